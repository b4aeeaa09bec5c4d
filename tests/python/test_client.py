"""Second independent client: the official `kubernetes` Python client lists, creates and watches.

Run by tests/tests/clients.rs as `python3 test_client.py NAMESPACE` with KUBECONFIG set to the
admin kubeconfig of a running skiff server. Prints `ok` on success; any failure raises.
"""

import os
import sys
import threading
import time

try:
    from kubernetes import client, config, watch
except ImportError:
    sys.stderr.write("the kubernetes Python module is missing: pip install kubernetes\n")
    sys.exit(2)


def main() -> None:
    ns = sys.argv[1]
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])
    v1 = client.CoreV1Api()

    # list
    names = [n.metadata.name for n in v1.list_namespace().items]
    for want in ("default", "kube-system", ns):
        assert want in names, f"namespace {want} not listed: {names}"

    # create and read back
    cm = v1.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm"), data={"k": "v"}),
    )
    assert cm.metadata.uid, cm
    assert cm.metadata.resource_version, cm
    got = v1.read_namespaced_config_map("py-cm", ns)
    assert got.data == {"k": "v"}, got
    assert got.metadata.creation_timestamp is not None, got

    # a typed 404 surfaces as an ApiException with the Status reason
    try:
        v1.read_namespaced_config_map("missing", ns)
        raise AssertionError("reading a missing configmap succeeded")
    except client.exceptions.ApiException as e:
        assert e.status == 404, e
        assert '"reason":"NotFound"' in e.body.replace(" ", ""), e.body

    # watch pods from the list's resourceVersion and see our pod ADDED
    rv = v1.list_namespaced_pod(ns).metadata.resource_version
    assert rv, "pod list has no resourceVersion"

    def create_pod() -> None:
        time.sleep(1)
        v1.create_namespaced_pod(
            ns,
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="py-pod", labels={"from": "python"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
            ),
        )

    creator = threading.Thread(target=create_pod)
    creator.start()
    seen = None
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=20):
        obj = event["object"]
        if event["type"] == "ADDED" and obj.metadata.name == "py-pod":
            seen = obj
            w.stop()
            break
    creator.join()
    assert seen is not None, "no ADDED event for py-pod within 20 s"
    assert seen.status.phase == "Pending", seen.status
    assert seen.metadata.labels == {"from": "python"}, seen.metadata
    assert seen.spec.containers[0].image == "busybox", seen.spec
    assert seen.spec.restart_policy == "Always", seen.spec

    # read back, then delete: the pod must be there right before the delete and gone after it
    got = v1.read_namespaced_pod("py-pod", ns)
    assert got.metadata.uid == seen.metadata.uid, got.metadata
    try:
        v1.delete_namespaced_pod("py-pod", ns)
    except client.exceptions.ApiException as e:
        # A 404 here was seen once in ~80 runs and is not explained yet (the pod was read
        # just above). A guess: urllib3 re-sending the idempotent DELETE after its first
        # connection failed (this client's watch shuts its socket down on stop()), the
        # re-sent one finding the pod already removed. The pod must be gone either way.
        assert e.status == 404, e
        sys.stderr.write("delete answered 404 (a re-sent DELETE?); checking the pod is gone\n")
    try:
        v1.read_namespaced_pod("py-pod", ns)
        raise AssertionError("py-pod still exists after its delete")
    except client.exceptions.ApiException as e:
        assert e.status == 404, e
    print("ok")


if __name__ == "__main__":
    main()
