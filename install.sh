#!/bin/sh
# skiff installer: the k3s installer's contract with skiff's names.
#
#   curl -sfL https://get.skiff.example | sh -                                   # a server
#   curl -sfL https://get.skiff.example | SKIFF_URL=https://SERVER:6443 SKIFF_TOKEN=K10… sh -
#   sudo sh install.sh                       # from a source checkout: builds the release binary
#
# Environment (all optional):
#   INSTALL_SKIFF_BINARY=path        install this local binary (no download, no build)
#   INSTALL_SKIFF_SKIP_DOWNLOAD=true use the binary already in the bin dir
#   INSTALL_SKIFF_VERSION            release to download (default: latest)
#   INSTALL_SKIFF_DOWNLOAD_URL       release base URL; the binary's sha256 is checked against
#                                    the release's sha256sum-<arch>.txt
#   INSTALL_SKIFF_EXEC               command and flags, e.g. "server --disable servicelb";
#                                    arguments after `sh -s -` are appended
#   INSTALL_SKIFF_NAME               service name skiff-<name> (default skiff / skiff-agent)
#   INSTALL_SKIFF_SKIP_ENABLE=true   do not enable the service at boot
#   INSTALL_SKIFF_SKIP_START=true    do not start the service
#   INSTALL_SKIFF_FORCE_RESTART=true restart even when nothing changed
#   INSTALL_SKIFF_SYMLINK=skip|force kubectl/crictl/ctr symlinks (default: where absent)
#   INSTALL_SKIFF_SKIP_PACKAGES=true do not install missing OS packages
#   INSTALL_SKIFF_INIT=systemd|supervisor  (default: systemd when it is PID 1)
#   INSTALL_SKIFF_BIN_DIR (/usr/local/bin), INSTALL_SKIFF_SYSTEMD_DIR (/etc/systemd/system),
#   INSTALL_SKIFF_DATA_DIR (/var/lib/skiff), INSTALL_SKIFF_CONFIG_DIR (/etc/skiff),
#   INSTALL_SKIFF_LOG_FILE (/var/log/<service>.log), INSTALL_SKIFF_PID_FILE (/run/<service>.pid)
#   SKIFF_URL, SKIFF_TOKEN, SKIFF_TOKEN_FILE, SKIFF_NODE_NAME: with SKIFF_URL this host joins
#   that server as an agent; they are written to the service's env file (mode 0600).
set -eu

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
    echo "[ERROR] $*" >&2
    exit 1
}

is_true() { [ "${1:-}" = true ] || [ "${1:-}" = 1 ] || [ "${1:-}" = yes ]; }

# --- settings ------------------------------------------------------------------------------
setup_env() {
    if [ -n "${SKIFF_URL:-}" ]; then
        CMD_DEFAULT=agent
    else
        CMD_DEFAULT=server
    fi
    # INSTALL_SKIFF_EXEC may start with the command; otherwise it only holds flags.
    set -f
    # shellcheck disable=SC2086 # word splitting of INSTALL_SKIFF_EXEC is the contract
    set -- ${INSTALL_SKIFF_EXEC:-} "$@"
    set +f
    case "${1:-}" in
        server | agent)
            CMD=$1
            shift
            ;;
        *) CMD=$CMD_DEFAULT ;;
    esac
    if [ "$CMD" = agent ]; then
        [ -n "${SKIFF_URL:-}" ] || fatal "an agent needs SKIFF_URL=https://SERVER:6443 (the server's address)"
        case "$SKIFF_URL" in
            https://*) ;;
            *) fatal "SKIFF_URL must start with https:// (got $SKIFF_URL), e.g. https://10.0.0.1:6443" ;;
        esac
        if [ -z "${SKIFF_TOKEN:-}" ] && [ -z "${SKIFF_TOKEN_FILE:-}" ]; then
            fatal "an agent needs SKIFF_TOKEN (or SKIFF_TOKEN_FILE): on the server run 'sudo cat /var/lib/skiff/server/node-token'"
        fi
    fi
    EXTRA_ARGS=""
    for a in "$@"; do
        case "$a" in
            *\'* | *\"* | *\\*) fatal "argument $a contains a quote or backslash: pass such values in $CONFIG_DIR/config.yaml" ;;
        esac
        EXTRA_ARGS="$EXTRA_ARGS $a"
    done

    if [ -n "${INSTALL_SKIFF_NAME:-}" ]; then
        SERVICE_NAME=skiff-$INSTALL_SKIFF_NAME
    elif [ "$CMD" = agent ]; then
        SERVICE_NAME=skiff-agent
    else
        SERVICE_NAME=skiff
    fi
    if [ "$CMD" = agent ]; then
        UNINSTALL_NAME=skiff-agent-uninstall.sh
    else
        UNINSTALL_NAME=skiff-uninstall.sh
    fi

    BIN_DIR=${INSTALL_SKIFF_BIN_DIR:-/usr/local/bin}
    if [ -z "${INSTALL_SKIFF_BIN_DIR:-}" ] && ! touch /usr/local/bin/.skiff-rw 2>/dev/null; then
        BIN_DIR=/opt/bin # read-only /usr (k3s does the same)
    fi
    rm -f /usr/local/bin/.skiff-rw 2>/dev/null || true
    SYSTEMD_DIR=${INSTALL_SKIFF_SYSTEMD_DIR:-/etc/systemd/system}
    DATA_DIR=${INSTALL_SKIFF_DATA_DIR:-/var/lib/skiff}
    CONFIG_DIR=${INSTALL_SKIFF_CONFIG_DIR:-/etc/skiff}
    LOG_FILE=${INSTALL_SKIFF_LOG_FILE:-/var/log/$SERVICE_NAME.log}
    PID_FILE=${INSTALL_SKIFF_PID_FILE:-/run/$SERVICE_NAME.pid}
    SKIFF=$BIN_DIR/skiff
    UNIT=$SYSTEMD_DIR/$SERVICE_NAME.service
    ENV_FILE=$SYSTEMD_DIR/$SERVICE_NAME.service.env
    SUPERVISOR=$BIN_DIR/$SERVICE_NAME-supervisor.sh
    KILLALL=$BIN_DIR/skiff-killall.sh
    UNINSTALL=$BIN_DIR/$UNINSTALL_NAME

    # The skiff command line; paths only when they differ from skiff's defaults, so a default
    # install's unit reads like the template in systemd/.
    EXEC="$SKIFF $CMD"
    [ "$DATA_DIR" = /var/lib/skiff ] || EXEC="$EXEC --data-dir $DATA_DIR"
    if [ "$CONFIG_DIR" != /etc/skiff ]; then
        EXEC="$EXEC --config $CONFIG_DIR/config.yaml"
        [ "$CMD" = agent ] || EXEC="$EXEC --write-kubeconfig $CONFIG_DIR/skiff.yaml"
    fi
    EXEC="$EXEC$EXTRA_ARGS"

    case "${INSTALL_SKIFF_INIT:-}" in
        systemd | supervisor) INIT=$INSTALL_SKIFF_INIT ;;
        "")
            if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
                INIT=systemd
            else
                INIT=supervisor
            fi
            ;;
        *) fatal "INSTALL_SKIFF_INIT must be systemd or supervisor (got $INSTALL_SKIFF_INIT)" ;;
    esac
    for d in "$BIN_DIR" "$SYSTEMD_DIR" "$DATA_DIR" "$CONFIG_DIR" "$(dirname "$LOG_FILE")" "$(dirname "$PID_FILE")"; do
        mkdir -p "$d" || fatal "cannot create $d: run as root, or point the INSTALL_SKIFF_*_DIR variables at writable paths"
    done
}

# --- prerequisites ---------------------------------------------------------------------------
have_cni() { [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ]; }

install_packages() {
    missing=""
    command -v containerd >/dev/null 2>&1 || missing="$missing containerd"
    command -v runc >/dev/null 2>&1 || missing="$missing runc"
    have_cni || missing="$missing cni"
    command -v nft >/dev/null 2>&1 || missing="$missing nftables"
    command -v conntrack >/dev/null 2>&1 || missing="$missing conntrack"
    command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
    [ -n "$missing" ] || return 0
    if is_true "${INSTALL_SKIFF_SKIP_PACKAGES:-}"; then
        fatal "missing:$missing; install them (INSTALL_SKIFF_SKIP_PACKAGES is set)"
    fi
    info "installing missing packages:$missing"
    if command -v apt-get >/dev/null 2>&1; then
        pkgs=$(echo "$missing" | sed 's/\bcni\b/containernetworking-plugins/')
        # shellcheck disable=SC2086 # one word per package
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs; } ||
            fatal "apt-get could not install$pkgs: check the network and apt sources, then re-run"
    elif command -v dnf >/dev/null 2>&1; then
        pkgs=$(echo "$missing" | sed 's/\bcni\b/containernetworking-plugins/; s/\bconntrack\b/conntrack-tools/; s/\biproute2\b/iproute/')
        # shellcheck disable=SC2086
        dnf install -y $pkgs || fatal "dnf could not install$pkgs: install them and re-run"
    elif command -v zypper >/dev/null 2>&1; then
        pkgs=$(echo "$missing" | sed 's/\bcni\b/cni-plugins/; s/\bconntrack\b/conntrack-tools/')
        # shellcheck disable=SC2086
        zypper --non-interactive install $pkgs || fatal "zypper could not install$pkgs: install them and re-run"
    elif command -v apk >/dev/null 2>&1; then
        pkgs=$(echo "$missing" | sed 's/\bcni\b/cni-plugins/; s/\bconntrack\b/conntrack-tools/')
        # shellcheck disable=SC2086
        apk add $pkgs || fatal "apk could not install$pkgs: install them and re-run"
    else
        fatal "missing:$missing and no apt-get/dnf/zypper/apk here: install them and re-run"
    fi
}

# --- binary ----------------------------------------------------------------------------------
sha256() { sha256sum "$1" | cut -d' ' -f1; }

download() { # url dest
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -qO "$2" "$1"
    else
        fatal "neither curl nor wget is installed: install one, or pass INSTALL_SKIFF_BINARY=path"
    fi
}

arch() {
    case "$(uname -m)" in
        x86_64 | amd64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        *) fatal "no skiff release for $(uname -m): build from source (cargo build --release) and pass INSTALL_SKIFF_BINARY" ;;
    esac
}

get_binary() {
    SRC_DIR=$(cd "$(dirname "$0")" 2>/dev/null && pwd || echo /nonexistent)
    if [ -n "${INSTALL_SKIFF_BINARY:-}" ]; then
        [ -x "$INSTALL_SKIFF_BINARY" ] || fatal "INSTALL_SKIFF_BINARY=$INSTALL_SKIFF_BINARY is not an executable file"
        NEW_BIN=$INSTALL_SKIFF_BINARY
    elif is_true "${INSTALL_SKIFF_SKIP_DOWNLOAD:-}" || [ "${INSTALL_SKIFF_SKIP_DOWNLOAD:-}" = binary ]; then
        [ -x "$SKIFF" ] || fatal "INSTALL_SKIFF_SKIP_DOWNLOAD is set but $SKIFF is missing: put the binary there first"
        NEW_BIN=$SKIFF
    elif [ -f "$SRC_DIR/cmd/skiff/Cargo.toml" ] && [ -z "${INSTALL_SKIFF_DOWNLOAD_URL:-}" ] && [ -z "${INSTALL_SKIFF_VERSION:-}" ]; then
        # From a source checkout (unless a release is asked for): build it.
        command -v cargo >/dev/null 2>&1 || fatal "running from a source checkout needs cargo (https://rustup.rs) to build skiff"
        info "building skiff from $SRC_DIR (cargo build --release -p skiff)"
        (cd "$SRC_DIR" && cargo build --release -p skiff) || fatal "cargo build failed: see the output above"
        NEW_BIN=$SRC_DIR/target/release/skiff
    else
        base=${INSTALL_SKIFF_DOWNLOAD_URL:-https://get.skiff.example/releases}
        version=${INSTALL_SKIFF_VERSION:-latest}
        a=$(arch)
        TMP_DL=$(mktemp -d)
        # Removed however the script ends (a failed checksum exits through fatal).
        trap 'rm -rf "$TMP_DL"' EXIT
        info "downloading skiff $version ($a) from $base"
        download "$base/$version/sha256sum-$a.txt" "$TMP_DL/sums" ||
            fatal "cannot download $base/$version/sha256sum-$a.txt: check the network, INSTALL_SKIFF_DOWNLOAD_URL and INSTALL_SKIFF_VERSION"
        download "$base/$version/skiff-$a" "$TMP_DL/skiff" ||
            fatal "cannot download $base/$version/skiff-$a: check the network, INSTALL_SKIFF_DOWNLOAD_URL and INSTALL_SKIFF_VERSION"
        want=$(awk -v f="skiff-$a" '$2 == f || $2 == "*" f { print $1 }' "$TMP_DL/sums")
        [ -n "$want" ] || fatal "the checksum file has no line for skiff-$a: the release is incomplete; pick another INSTALL_SKIFF_VERSION"
        got=$(sha256 "$TMP_DL/skiff")
        [ "$want" = "$got" ] || fatal "checksum mismatch for skiff-$a (want $want, got $got): the download is corrupt or tampered with; re-run, or check INSTALL_SKIFF_DOWNLOAD_URL"
        chmod 755 "$TMP_DL/skiff"
        NEW_BIN=$TMP_DL/skiff
    fi
}

# --- agent preflight: the server answers and the token matches its CA ------------------------
check_join() {
    [ "$CMD" = agent ] || return 0
    command -v curl >/dev/null 2>&1 || return 0
    tok=${SKIFF_TOKEN:-}
    if [ -z "$tok" ] && [ -n "${SKIFF_TOKEN_FILE:-}" ]; then
        tok=$(cat "$SKIFF_TOKEN_FILE") || fatal "cannot read SKIFF_TOKEN_FILE=$SKIFF_TOKEN_FILE"
    fi
    ca=$(mktemp)
    if ! curl -ksf --connect-timeout 5 --max-time 10 -o "$ca" "$SKIFF_URL/cacerts"; then
        rm -f "$ca"
        fatal "cannot reach the server at $SKIFF_URL: check SKIFF_URL, that 'skiff server' runs there and that port is open"
    fi
    case "$tok" in
        K10*::*)
            want=$(echo "$tok" | sed 's/^K10\([0-9a-fA-F]*\)::.*/\1/' | tr 'A-F' 'a-f')
            got=$(sha256 "$ca")
            if [ "$want" != "$got" ]; then
                rm -f "$ca"
                fatal "SKIFF_TOKEN does not match the server at $SKIFF_URL (CA hash differs): copy the token again from the server's /var/lib/skiff/server/node-token"
            fi
            password=${tok##*:}
            ;;
        *) password=$tok ;;
    esac
    code=$(curl -s --max-time 10 --cacert "$ca" -u "node:$password" -o /dev/null -w '%{http_code}' "$SKIFF_URL/v1-skiff/client-ca.crt" || true)
    rm -f "$ca"
    case "$code" in
        401 | 403) fatal "the server at $SKIFF_URL rejected SKIFF_TOKEN ($code): copy the token again from the server's /var/lib/skiff/server/node-token" ;;
    esac
}

# --- files -------------------------------------------------------------------------------------
CHANGED=""

# put_file dest mode: stdin → dest when the content differs.
put_file() {
    tmp="$1.skiff-new"
    cat >"$tmp"
    chmod "$2" "$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 0
    fi
    mv -f "$tmp" "$1"
    CHANGED="$CHANGED $1"
}

install_binary() {
    if [ "$NEW_BIN" != "$SKIFF" ]; then
        if [ -f "$SKIFF" ] && cmp -s "$NEW_BIN" "$SKIFF"; then
            :
        else
            info "installing skiff to $SKIFF"
            cp -f "$NEW_BIN" "$SKIFF.skiff-new"
            chmod 755 "$SKIFF.skiff-new"
            mv -f "$SKIFF.skiff-new" "$SKIFF"
            CHANGED="$CHANGED $SKIFF"
        fi
    fi
    [ -z "${TMP_DL:-}" ] || rm -rf "$TMP_DL"
    "$SKIFF" --version >/dev/null 2>&1 || fatal "$SKIFF does not run on this machine: check the architecture and INSTALL_SKIFF_BINARY"
}

create_symlinks() {
    [ "${INSTALL_SKIFF_SYMLINK:-}" != skip ] || return 0
    for cmd in kubectl crictl ctr; do
        link=$BIN_DIR/$cmd
        if [ -L "$link" ] && [ "$(readlink "$link")" = "$SKIFF" ]; then
            continue
        fi
        # As k3s: only where the command is not on PATH yet (force: always). The link runs the
        # real tool with skiff's settings (admin kubeconfig, skiff's containerd socket); with
        # the tool elsewhere on PATH, `skiff $cmd` does the same without shadowing it.
        if [ "${INSTALL_SKIFF_SYMLINK:-}" = force ] || { [ ! -e "$link" ] && ! command -v "$cmd" >/dev/null 2>&1; }; then
            info "symlink $link -> $SKIFF"
            ln -sf "$SKIFF" "$link"
        else
            info "skipping the $cmd symlink: $cmd is already on PATH (use 'skiff $cmd')"
        fi
    done
}

write_env_file() {
    {
        echo "# written by install.sh; systemd and the supervisor read it"
        for v in SKIFF_URL SKIFF_TOKEN SKIFF_TOKEN_FILE SKIFF_NODE_NAME http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
            eval "val=\${$v:-}"
            # shellcheck disable=SC2154 # val is set by the eval above
            [ -n "$val" ] || continue
            case "$val" in
                *\'* | *"
"*) fatal "$v contains a quote or newline: such values cannot go into $ENV_FILE" ;;
            esac
            echo "$v='$val'"
        done
    } | put_file "$ENV_FILE" 600
}

write_unit() {
    if [ "$CMD" = agent ]; then
        desc="skiff: lightweight Kubernetes (agent)"
        ready="once the node is registered"
    else
        desc="skiff: lightweight Kubernetes (server)"
        ready="once the API serves"
    fi
    put_file "$UNIT" 644 <<EOF
# written by install.sh (template: systemd/skiff.service in the skiff source)
[Unit]
Description=$desc
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
# skiff sends READY=1 over \$NOTIFY_SOCKET $ready.
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$ENV_FILE
# Stopping the service leaves pods running (for upgrades); $KILLALL stops everything.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$EXEC
EOF
}

# Where systemd is not PID 1: a small sh loop that restarts skiff when it exits.
write_supervisor() {
    put_file "$SUPERVISOR" 755 <<EOF
#!/bin/sh
# written by install.sh: runs $SERVICE_NAME where systemd is not PID 1; restarts it when it
# exits. Its pid is in $PID_FILE, skiff's in $PID_FILE.child; the log is $LOG_FILE.
set -a
[ ! -f '$ENV_FILE' ] || . '$ENV_FILE'
set +a
child=
trap 'trap - TERM INT; [ -z "\$child" ] || kill "\$child" 2>/dev/null; rm -f "$PID_FILE.child"; exit 0' TERM INT
while :; do
    modprobe br_netfilter 2>/dev/null || true
    modprobe overlay 2>/dev/null || true
    $EXEC >>'$LOG_FILE' 2>&1 </dev/null &
    child=\$!
    echo "\$child" >'$PID_FILE.child'
    wait "\$child" || true
    echo "supervisor: $SERVICE_NAME exited; restarting in 5s" >>'$LOG_FILE'
    sleep 5
done
EOF
}

write_killall() {
    put_file "$KILLALL" 755 <<EOF
#!/bin/sh
# written by install.sh: stops skiff, every pod's containers and shims, unmounts pod volumes,
# deletes skiff's network links and nftables tables. Pods keep running after a plain service
# stop (KillMode=process); this stops them too.
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
DATA_DIR='$DATA_DIR'
SKIFF='$SKIFF'

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for unit in $SYSTEMD_DIR/skiff*.service; do
        [ -f "\$unit" ] && systemctl stop "\$(basename "\$unit")" 2>/dev/null
    done
fi
for pidfile in $(dirname "$PID_FILE")/skiff*.pid; do
    [ -f "\$pidfile" ] || continue
    kill "\$(cat "\$pidfile")" 2>/dev/null
    rm -f "\$pidfile"
done

# skiff's own processes: the binary, and containerd and shims working under the data dir.
ours() {
    for p in /proc/[0-9]*; do
        exe=\$(readlink "\$p/exe" 2>/dev/null) || continue
        case "\$exe" in
            "\$SKIFF" | "\$SKIFF (deleted)") echo "\${p#/proc/}"; continue ;;
        esac
        if tr '\0' ' ' <"\$p/cmdline" 2>/dev/null | grep -qF "\$DATA_DIR/"; then
            echo "\${p#/proc/}"
        fi
    done
}
# Every process below the given pids.
descendants() {
    for p in /proc/[0-9]*; do
        ppid=\$(awk '{ print \$4 }' "\$p/stat" 2>/dev/null) || continue
        for want in "\$@"; do
            [ "\$ppid" = "\$want" ] && echo "\${p#/proc/}"
        done
    done
}
tree() {
    level="\$*"
    all=""
    while [ -n "\$level" ]; do
        all="\$all \$level"
        # shellcheck disable=SC2086
        level=\$(descendants \$level | tr '\n' ' ')
    done
    echo "\$all"
}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    pids=\$(ours | tr '\n' ' ')
    [ -n "\${pids% }" ] || break
    # shellcheck disable=SC2086
    pids=\$(tree \$pids)
    sig=TERM
    [ "\$attempt" -lt 4 ] || sig=KILL
    # shellcheck disable=SC2086
    kill -s \$sig \$pids 2>/dev/null
    sleep 1
done

# Pod volumes and container roots under the data dir, deepest first.
awk -v d="\$DATA_DIR/" 'index(\$2, d) == 1 { print \$2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "\$m" 2>/dev/null
done
for m in \$(awk '\$2 ~ "^/run/netns/cni-" { print \$2 }' /proc/self/mounts); do
    umount "\$m" 2>/dev/null && rm -f "\$m"
done

for link in cni0 flannel.1; do
    ip link delete "\$link" 2>/dev/null
done
if command -v nft >/dev/null 2>&1; then
    nft list tables 2>/dev/null | while read -r _ family name; do
        case "\$name" in skiff*) nft delete table "\$family" "\$name" ;; esac
    done
fi
rm -rf "\$DATA_DIR/agent/cni"
exit 0
EOF
}

write_uninstall() {
    put_file "$UNINSTALL" 755 <<EOF
#!/bin/sh
# written by install.sh: skiff-killall.sh, then removes everything install.sh put here.
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
'$KILLALL'
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable '$SERVICE_NAME' 2>/dev/null
    systemctl reset-failed '$SERVICE_NAME' 2>/dev/null
fi
rm -f '$UNIT' '$ENV_FILE' '$SUPERVISOR' '$PID_FILE' '$PID_FILE.child' '$LOG_FILE'
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload 2>/dev/null
fi
# Other skiff services on this host (a server and an agent share the binary) keep it.
for other in '$BIN_DIR'/skiff-*uninstall.sh; do
    [ "\$other" = '$UNINSTALL' ] || [ ! -f "\$other" ] || { rm -f '$UNINSTALL'; exit 0; }
done
for cmd in kubectl crictl ctr; do
    [ "\$(readlink '$BIN_DIR'/"\$cmd" 2>/dev/null)" = '$SKIFF' ] && rm -f '$BIN_DIR'/"\$cmd"
done
rm -rf '$CONFIG_DIR' '$DATA_DIR'
rm -f '$SKIFF' '$KILLALL' '$UNINSTALL'
EOF
}

# --- service -------------------------------------------------------------------------------------
supervisor_running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start_service() {
    if [ "$INIT" = systemd ]; then
        systemctl daemon-reload
        is_true "${INSTALL_SKIFF_SKIP_ENABLE:-}" || systemctl enable "$SERVICE_NAME" >/dev/null 2>&1
        is_true "${INSTALL_SKIFF_SKIP_START:-}" && return 0
        if [ -z "$CHANGED" ] && ! is_true "${INSTALL_SKIFF_FORCE_RESTART:-}" && systemctl is-active --quiet "$SERVICE_NAME"; then
            info "$SERVICE_NAME is running with these settings: nothing to restart"
            return 0
        fi
        info "starting $SERVICE_NAME (systemctl restart)"
        systemctl restart "$SERVICE_NAME" || fatal "$SERVICE_NAME did not start: see journalctl -u $SERVICE_NAME"
        return 0
    fi
    is_true "${INSTALL_SKIFF_SKIP_START:-}" && return 0
    if supervisor_running; then
        if [ -z "$CHANGED" ] && ! is_true "${INSTALL_SKIFF_FORCE_RESTART:-}"; then
            info "$SERVICE_NAME is running with these settings: nothing to restart"
            return 0
        fi
        info "restarting $SERVICE_NAME: its settings changed"
        kill "$(cat "$PID_FILE")" 2>/dev/null || true
        i=0
        while supervisor_running && [ $i -lt 50 ]; do
            sleep 0.2
            i=$((i + 1))
        done
    fi
    info "systemd is not PID 1 here: running $SERVICE_NAME under $SUPERVISOR (pid file $PID_FILE, log $LOG_FILE)"
    # wait_ready reads only what this start logs.
    LOG_OFFSET=$(($(wc -c <"$LOG_FILE" 2>/dev/null || echo 0) + 1))
    if command -v setsid >/dev/null 2>&1; then
        setsid "$SUPERVISOR" </dev/null >/dev/null 2>&1 &
    else
        nohup "$SUPERVISOR" </dev/null >/dev/null 2>&1 &
    fi
    echo $! >"$PID_FILE"
}

wait_ready() {
    is_true "${INSTALL_SKIFF_SKIP_START:-}" && return 0
    [ "$INIT" = supervisor ] || return 0 # Type=notify: systemctl returned once skiff was ready
    if [ "$CMD" = agent ]; then
        pattern="node registered"
    else
        pattern="skiff server is ready"
    fi
    i=0
    while [ $i -lt 600 ]; do
        tail -c "+${LOG_OFFSET:-1}" "$LOG_FILE" 2>/dev/null | grep -q "$pattern" && {
            info "$SERVICE_NAME is ready"
            return 0
        }
        supervisor_running || fatal "$SERVICE_NAME stopped: see $LOG_FILE"
        sleep 0.1
        i=$((i + 1))
    done
    warn "$SERVICE_NAME is not ready after 60s: see $LOG_FILE"
}

main() {
    setup_env "$@"
    install_packages
    get_binary
    check_join
    install_binary
    create_symlinks
    write_killall
    write_uninstall
    write_env_file
    write_unit
    [ "$INIT" = systemd ] || write_supervisor
    start_service
    wait_ready
    if [ "$CMD" = server ]; then
        info "admin kubeconfig: $CONFIG_DIR/skiff.yaml; join agents with SKIFF_URL=https://<this host>:6443 SKIFF_TOKEN=\$(cat $DATA_DIR/server/node-token)"
    fi
}

main "$@"
