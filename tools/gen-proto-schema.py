#!/usr/bin/env python3
"""Generate pkg/api/src/protobuf/schema_gen.rs: the table that drives skiff's generic
Kubernetes protobuf <-> JSON codec.

Inputs (facts only, nothing is copied into the output but field numbers, names and flags):
  * the `k8s-pb` crate sources (prost definitions: message names, field tags, wire types,
    nested message types, maps, repeated fields, and `impl Resource` apiVersion/kind pairs);
  * the Go API type sources (kubernetes/api, kubernetes/apimachinery,
    kubernetes/apiextensions-apiserver, kubernetes/kube-aggregator): JSON field names
    (`json:"..."`), `omitempty`, pointer-ness (presence of zero values) and `,inline` fields,
    matched to the proto fields by their protobuf tag number.

Usage:
  tools/gen-proto-schema.py \
      --k8s-pb ~/.cargo/registry/src/*/k8s-pb-0.9.0/src \
      --go api=/path/to/kubernetes/api \
      --go apimachinery=/path/to/kubernetes/apimachinery \
      --go apiextensions_apiserver=/path/to/kubernetes/apiextensions-apiserver \
      --go kube_aggregator=/path/to/kubernetes/kube-aggregator \
      > pkg/api/src/protobuf/schema_gen.rs

Each --go path may be a checkout or a bare git directory (its HEAD is read). The name before
`=` is the top-level k8s-pb module the Go repository corresponds to.
"""

import argparse
import os
import re
import subprocess
import sys

# ---------------------------------------------------------------------------------------------
# k8s-pb (prost) sources


class PField:
    def __init__(self, tag, kind, label, rust_name, target, map_value):
        self.tag = tag
        self.kind = kind  # string|bool|int32|int64|double|bytes|message|map
        self.label = label  # opt|rep|map
        self.rust_name = rust_name
        self.target = target  # full message name for message fields / map message values
        self.map_value = map_value  # scalar kind or "message" for maps


def strip_comments(text):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("//"):
            continue
        out.append(line)
    return "\n".join(out)


def resolve(module, path):
    """Resolve a Rust type path used inside `module` (a list) to a dotted message name."""
    parts = path.split("::")
    mod = list(module)
    while parts and parts[0] == "super":
        mod.pop()
        parts.pop(0)
    if parts and parts[0] == "crate":
        mod = []
        parts.pop(0)
    return ".".join(mod + parts)


def inner_type(ty):
    ty = re.sub(r"\s+", "", ty).replace(",>", ">")
    for w in (
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ):
        while ty.startswith(w):
            ty = ty[len(w) : -1]
    m = re.match(r"::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,(.*)>$", ty)
    if m:
        ty = m.group(1)
    return ty.rstrip(",")


def parse_k8s_pb(root):
    messages = {}  # full name -> list[PField]
    resources = []  # (api_version, kind, full name)
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            if f == "mod.rs":
                module = os.path.dirname(rel).split(os.sep)
            else:
                module = rel[:-3].split(os.sep)
            if module == [""] or module == ["lib"]:
                continue
            text = strip_comments(open(path, encoding="utf-8").read())
            for m in re.finditer(r"pub struct (\w+) \{(\}|.*?\n\})", text, re.S):
                name, body = m.group(1), m.group(2)[:-1]
                full = ".".join(module + [name])
                fields = []
                chunks = body.split("#[prost(")[1:]
                for ch in chunks:
                    attr, rest = ch.split(")]", 1)
                    fm = re.match(r"\s*pub (r#)?(\w+):(.*)", rest, re.S)
                    if not fm:
                        raise SystemExit(f"cannot parse field in {full}: {rest[:80]}")
                    rust_name = fm.group(2)
                    ty = fm.group(3).strip().rstrip(",")
                    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                    if attr.startswith("btree_map"):
                        mv = re.match(r'btree_map = "string, (\w+)"', attr).group(1)
                        target = resolve(module, inner_type(ty)) if mv == "message" else None
                        fields.append(PField(tag, "map", "map", rust_name, target, mv))
                        continue
                    kind = attr.split(",")[0].strip()
                    if kind.startswith("bytes"):
                        kind = "bytes"
                    label = "rep" if "repeated" in attr else "opt"
                    target = resolve(module, inner_type(ty)) if kind == "message" else None
                    fields.append(PField(tag, kind, label, rust_name, target, None))
                messages[full] = fields
            for m in re.finditer(
                r"impl crate::Resource for (\w+) \{\s*const API_VERSION: &'static str = \"([^\"]*)\";"
                r".*?const KIND: &'static str = \"([^\"]*)\";",
                text,
                re.S,
            ):
                resources.append((m.group(2), m.group(3), ".".join(module + [m.group(1)])))
    return messages, resources


# ---------------------------------------------------------------------------------------------
# Go API sources


class GoField:
    def __init__(self, json, omitempty, pointer, inline, order):
        self.json = json
        self.omitempty = omitempty
        self.pointer = pointer
        self.inline = inline
        self.order = order


def go_files(src):
    """Yield (relative path, text) of the Go sources in a checkout or bare git dir."""
    if os.path.isdir(os.path.join(src, "objects")) and os.path.isfile(os.path.join(src, "HEAD")):
        names = subprocess.run(
            ["git", "--git-dir", src, "ls-tree", "-r", "--name-only", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        for n in names:
            if keep_go(n):
                text = subprocess.run(
                    ["git", "--git-dir", src, "show", "HEAD:" + n],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                yield n, text
    else:
        for dirpath, _dirs, files in os.walk(src):
            for f in files:
                p = os.path.relpath(os.path.join(dirpath, f), src)
                if keep_go(p):
                    yield p, open(os.path.join(dirpath, f), encoding="utf-8").read()


def source_version(src):
    """The commit a Go source directory (bare git dir or checkout) is at, if known."""
    git_dir = src if os.path.isdir(os.path.join(src, "objects")) else os.path.join(src, ".git")
    r = subprocess.run(
        ["git", "--git-dir", git_dir, "log", "-1", "--format=commit %H (%cs)"],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() if r.returncode == 0 else "unknown commit"


def keep_go(path):
    if not path.endswith(".go") or path.endswith("_test.go"):
        return False
    base = os.path.basename(path)
    if base.startswith("zz_generated") or base.endswith(".pb.go"):
        return False
    return (
        "types" in base
        or base in ("time.go", "micro_time.go", "duration.go", "intstr.go", "quantity.go")
        or "/meta/v1/" in path
    )


FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([\*\[\]\w\.]+(?:\[[\w\.]+\][\*\w\.]+)?)\s+`([^`]*)`")


def parse_go(srcs):
    """-> {(module path, struct name): {tag: GoField}}, {(module path, type name)} slice types"""
    structs = {}
    slices = set()
    for top, src in srcs:
        for rel, text in go_files(src):
            module = ".".join([top] + os.path.dirname(rel).split("/"))
            for m in re.finditer(r"^type (\w+) \[\]", text, re.M):
                slices.add((module, m.group(1).lower()))
            for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
                name, body = m.group(1), m.group(2)
                fields = {}
                order = 0
                for line in body.split("\n"):
                    fm = FIELD_RE.match(line)
                    if not fm:
                        continue
                    gotype, tags = fm.group(2), fm.group(3)
                    pm = re.search(r'protobuf:"(\w+),(\d+),', tags)
                    jm = re.search(r'json:"([^"]*)"', tags)
                    if not pm or not jm:
                        continue
                    jparts = jm.group(1).split(",")
                    fields[int(pm.group(2))] = GoField(
                        jparts[0],
                        "omitempty" in jparts[1:],
                        gotype.startswith("*"),
                        # an embedded struct without a JSON name is promoted into its parent
                        jparts[0] == "" and fm.group(1) is None,
                        order,
                    )
                    order += 1
                if fields:
                    structs[(module, name.lower())] = fields
    return structs, slices


# ---------------------------------------------------------------------------------------------

SPECIAL = {
    "apimachinery.pkg.apis.meta.v1.Time": "Time",
    "apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "apimachinery.pkg.api.resource.Quantity": "Quantity",
    "apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "apimachinery.pkg.runtime.RawExtension": "RawJson",
    "apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "RawJson",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON": "RawJson",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}

SPECIAL_LC = {k.lower(): v for k, v in SPECIAL.items()}

# Always in the table: the meta types any apiVersion may carry.
ROOT_EXTRA = [
    "apimachinery.pkg.apis.meta.v1.Status",
    "apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "apimachinery.pkg.apis.meta.v1.List",
    "apimachinery.pkg.apis.meta.v1.Duration",
]

META_V1 = "apimachinery.pkg.apis.meta.v1"

SCALARS = {"string": "Str", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64", "bytes": "Bytes"}


def camel(snake):
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def ga_module(module):
    return re.fullmatch(r"v\d+", module.split(".")[-1]) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-pb", required=True)
    ap.add_argument("--go", action="append", default=[])
    ap.add_argument("--all", action="store_true", help="include alpha/beta versions too")
    args = ap.parse_args()

    messages, resources = parse_k8s_pb(args.k8s_pb)
    go_structs, go_slices = parse_go([tuple(g.split("=", 1)) for g in args.go])

    # Which apiVersion each k8s-pb module speaks.
    module_api = {}
    for av, _kind, full in resources:
        module_api.setdefault(full.rsplit(".", 1)[0], av)

    # Roots: every message of a module with a known apiVersion (GA unless --all), plus extras.
    roots = [n for n in messages if n.rsplit(".", 1)[0] in module_api]
    if not args.all:
        roots = [n for n in roots if ga_module(n.rsplit(".", 1)[0])]
    roots += ROOT_EXTRA
    selected = []
    seen = set()
    stack = list(reversed(sorted(roots)))
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        if n not in messages:
            raise SystemExit(f"unknown message {n}")
        seen.add(n)
        selected.append(n)
        for f in messages[n]:
            if f.target and f.target not in seen:
                stack.append(f.target)
    selected.sort()
    index = {n: i for i, n in enumerate(selected)}

    unmatched = []
    out = []
    w = out.append
    w("//! GENERATED by tools/gen-proto-schema.py: the message table of skiff's protobuf codec")
    w("//! (field numbers and wire types from the `k8s-pb` crate, JSON names / omitempty /")
    w("//! pointer / inline flags from the Go API types). Do not edit by hand: regenerate it with")
    w("//! the script (its docstring has the command line), writing its output to this file, then")
    w("//! run `cargo fmt`. Inputs: `k8s-pb` 0.9.0 sources and these Go sources:")
    for top, src in (g.split("=", 1) for g in args.go):
        w(f"//! - {top}: {source_version(src)}")
    w("")
    w("use super::schema::{Card::*, Field, Message, Special, Ty::*};")
    w("")
    w("const K: u8 = super::schema::KEEP_ZERO;")
    w("const I: u8 = super::schema::INLINE;")
    w("")
    w(f"pub static MESSAGES: [Message; {len(selected)}] = [")
    for n in selected:
        module, short = n.rsplit(".", 1)
        gofields = go_structs.get((module, short.lower()), {})
        special = SPECIAL_LC.get(n.lower(), "None")
        fields = messages[n]
        if special == "None" and (module, short.lower()) in go_slices and len(fields) == 1:
            special = "ListWrapper"
        rows = []
        for f in fields:
            g = gofields.get(f.tag)
            if g is None:
                json = camel(f.rust_name)
                flags = ["K"]
                order = 1000 + f.tag
                if special == "None":
                    unmatched.append(f"{n}.{f.rust_name}")
            else:
                json = g.json
                flags = []
                if g.pointer or not g.omitempty:
                    flags.append("K")
                if g.inline:
                    flags.append("I")
                order = g.order
            if f.label == "map":
                ty = f"M({index[f.target]})" if f.map_value == "message" else SCALARS[f.map_value]
                card = "Map"
            else:
                ty = f"M({index[f.target]})" if f.kind == "message" else SCALARS[f.kind]
                card = "Rep" if f.label == "rep" else "One"
            fl = "|".join(flags) if flags else "0"
            rows.append((order, f"Field::new({f.tag}, {json!r}, {ty}, {card}, {fl})".replace("'", '"')))
        rows.sort()
        w(f"    // {index[n]}")
        w(f'    Message::new("{n}", Special::{special}, &[')
        for _o, r in rows:
            w(f"        {r},")
        w("    ]),")
    w("];")
    w("")

    kinds = {}
    for av, kind, full in resources:
        if full in index:
            kinds[(av, kind)] = index[full]
    for n in selected:
        module, short = n.rsplit(".", 1)
        av = module_api.get(module)
        if av is not None:
            kinds.setdefault((av, short), index[n])
    w("/// `(apiVersion, kind)` -> index into [`MESSAGES`], sorted for binary search. Kinds of")
    w(f"/// `{META_V1}` (Status, DeleteOptions, List…) are looked up by [`META_V1_PREFIX`].")
    w(f"pub static KINDS: [(&str, &str, u16); {len(kinds)}] = [")
    for (av, kind), i in sorted(kinds.items()):
        w(f'    ("{av}", "{kind}", {i}),')
    w("];")
    w("")
    w(f'pub const META_V1_PREFIX: &str = "{META_V1}.";')
    print("\n".join(out))
    sys.stderr.write(
        f"{len(selected)} messages, {sum(len(messages[n]) for n in selected)} fields, "
        f"{len(kinds)} kinds; {len(unmatched)} fields without Go info (JSON name guessed)\n"
    )
    for u in unmatched:
        sys.stderr.write(f"  unmatched: {u}\n")


if __name__ == "__main__":
    main()
