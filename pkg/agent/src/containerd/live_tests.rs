//! End-to-end checks against the real containerd, each in a network and mount namespace of its
//! own ([`Bed`]). They run with the rest of the suite, gated like the e2e multi-node tests:
//! `SKIFF_E2E_NODES=0` skips them; otherwise they need root, containerd, runc, the CNI plugins
//! and busybox-static and fail naming the packages when one is missing (`bash .ci/run`
//! installs them). `cargo test -p skiff-agent live -- --nocapture` shows their timings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use serde_json::json;

use super::oci::{layer_tar, LayerEntry, OciImage};
use super::*;
use crate::cri::Cri;

/// What the live tests run, with the Debian package that provides each.
pub(crate) const TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/containerd", "containerd"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/lib/cni/loopback", "containernetworking-plugins"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/unshare", "util-linux"),
    ("/bin/busybox", "busybox-static"),
];

/// The registry test's extra tools.
const REGISTRY_TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/skopeo", "skopeo"),
];

/// Whether the live tests run: as the e2e multi-node tests, `SKIFF_E2E_NODES=0` skips them
/// (developers without root); unset or anything else runs them, and they fail when the machine
/// lacks what they need.
pub(crate) fn enabled() -> bool {
    std::env::var("SKIFF_E2E_NODES").map_or(true, |v| v.trim() != "0")
}

/// Why the live tests cannot run here (not root, or a tool missing), naming what to install.
pub(crate) fn missing_prerequisites(
    status: &str,
    tools: &[(&str, &str)],
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    if uid != Some(0) {
        return Some(
            "the live agent tests need root (namespaces, mounts, containerd): run them as \
             root, or set SKIFF_E2E_NODES=0 to skip them"
                .into(),
        );
    }
    let mut missing: Vec<&str> = Vec::new();
    for (path, pkg) in tools {
        if !exists(path) && !missing.contains(pkg) {
            missing.push(pkg);
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the live agent tests need these Debian packages: apt-get install -y {} (or \
             run `bash .ci/run`; SKIFF_E2E_NODES=0 skips the tests)",
            missing.join(" ")
        )
    })
}

/// Whether a live test should run: false (skip) with `SKIFF_E2E_NODES=0`; panics naming what to
/// install when enabled on a machine that lacks root or one of `extra` + [`TOOLS`].
pub(crate) fn should_run(extra: &[(&str, &str)]) -> bool {
    let tools: Vec<(&str, &str)> = TOOLS.iter().chain(extra).copied().collect();
    should_run_with(&tools)
}

/// [`should_run`] for a test that needs root and `tools` only (no containerd).
pub(crate) fn should_run_with(tools: &[(&str, &str)]) -> bool {
    if !enabled() {
        eprintln!("skipped: SKIFF_E2E_NODES=0");
        return false;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(why) = missing_prerequisites(&status, tools, |p| Path::new(p).exists()) {
        panic!("{why}");
    }
    true
}

/// A private network namespace (only `lo`, up) and mount namespace for one test's containerd,
/// held by an `unshare` process; a temp dir with the `containerd-in-ns` wrapper. Nothing the
/// test's containerd mounts or creates (overlay rootfs, pod netns, the CNI bridge) is seen by
/// the host or by another test. On drop every process in the namespace (containerd, shims,
/// containers, helpers) is killed and the holder with them, so the namespaces go away.
pub(crate) struct Bed {
    holder: std::process::Child,
    /// `/proc/<holder>/ns/net` as a link text (`net:[4026…]`), to find the namespace's processes.
    net_id: String,
    pub(crate) tmp: tempfile::TempDir,
    /// Runs `containerd "$@"` inside the namespaces.
    pub(crate) wrapper: PathBuf,
}

/// How long the namespace holder may take to come up.
const HOLDER_READY: Duration = Duration::from_secs(10);

impl Bed {
    pub(crate) fn create() -> Bed {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        // The holder reports `ready` and then waits for its stdin to close: when the test
        // process dies, even by SIGKILL, the holder goes with it.
        let mut holder = std::process::Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .args([
                "/bin/sh",
                "-c",
                "ip link set lo up && echo ready && exec cat >/dev/null",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs the namespace holder");
        let mut out = holder.stdout.take().expect("holder stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 6];
            let _ = tx.send(out.read_exact(&mut buf).map(|_| buf));
        });
        let ready = rx.recv_timeout(HOLDER_READY);
        if !matches!(ready, Ok(Ok(b)) if &b == b"ready\n") {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("the namespace holder (unshare --net --mount) did not come up: {ready:?}");
        }
        let net_id = std::fs::read_link(format!("/proc/{}/ns/net", holder.id()))
            .expect("the holder's network namespace")
            .to_string_lossy()
            .into_owned();
        let tmp = tempfile::tempdir().expect("temp dir");
        let wrapper = tmp.path().join("containerd-in-ns");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec nsenter --target {} --net --mount -- containerd \"$@\"\n",
                holder.id()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Bed {
            holder,
            net_id,
            tmp,
            wrapper,
        }
    }

    /// `program` run inside the namespaces.
    pub(crate) fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new("nsenter");
        c.arg(format!("--target={}", self.holder.id()))
            .args(["--net", "--mount", "--", program]);
        c
    }

    /// Options that start containerd with data dir `<tmp>/<name>` inside the namespaces.
    pub(crate) fn containerd(&self, name: &str, registries: &Path) -> ContainerdOptions {
        ContainerdOptions {
            data_dir: self.tmp.path().join(name),
            private_registry: registries.to_path_buf(),
            binary: Some(self.wrapper.clone()),
        }
    }

    /// Pids in the bed's network namespace, the holder excepted.
    fn members(&self) -> Vec<u32> {
        let me = self.holder.id();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&p| p != me)
            .filter(|p| {
                std::fs::read_link(format!("/proc/{p}/ns/net"))
                    .is_ok_and(|l| l.to_string_lossy() == self.net_id)
            })
            .collect()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // containerd, shims and containers (a failed test leaves them running); three rounds
        // for processes forked while the first were killed.
        for _ in 0..3 {
            let pids = self.members();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// busybox as an image: `/bin/busybox` plus applet links.
pub(crate) fn busybox_image() -> OciImage {
    let bb = std::fs::read("/bin/busybox").unwrap();
    let mut entries = vec![
        LayerEntry::Dir { path: "bin".into() },
        LayerEntry::Dir { path: "tmp".into() },
        LayerEntry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            data: bb,
        },
    ];
    for applet in [
        "sh", "sleep", "echo", "cat", "ls", "hostname", "ip", "touch", "test", "rm",
    ] {
        entries.push(LayerEntry::Symlink {
            path: format!("bin/{applet}"),
            target: "busybox".into(),
        });
    }
    OciImage::build(
        vec![layer_tar(&entries).unwrap()],
        json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]}),
    )
    .unwrap()
}

/// The same image as a `docker save` archive (manifest.json + config + layer dir).
fn write_docker_archive(img: &OciImage, tag: &str, path: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("layer0/layer.tar", &img.blobs[0].1);
    add("config.json", &img.blobs[1].1);
    let manifest =
        json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer0/layer.tar"]}]);
    add("manifest.json", manifest.to_string().as_bytes());
    b.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_runs_a_busybox_pod_in_a_netns() {
    if !should_run(&[]) {
        return;
    }
    let bed = Bed::create();
    let opts = bed.containerd("d", &bed.tmp.path().join("registries.yaml"));
    let t = Instant::now();
    let sup = start(&opts).await.expect("start containerd");
    eprintln!("containerd {} ready in {:?}", sup.version(), t.elapsed());
    assert!(sup.version().starts_with("1."), "{}", sup.version());
    let paths = Paths::new(&opts.data_dir);
    let mut result = exercise(&paths, sup.socket()).await;
    if result.is_ok() {
        result = restarts_after_a_crash(&sup).await;
    }
    let t = Instant::now();
    sup.shutdown().await;
    eprintln!("containerd shut down in {:?}", t.elapsed());
    if result.is_ok() {
        result = replaces_a_stale_containerd(&paths, &bed.wrapper).await;
    }
    drop(bed);
    result.unwrap();
}

/// A containerd left over from an earlier agent is stopped by the next start.
async fn replaces_a_stale_containerd(paths: &Paths, wrapper: &Path) -> Result<(), String> {
    let mut stale = Proc(
        std::process::Command::new(wrapper)
            .arg("--config")
            .arg(&paths.config_toml)
            .arg("--address")
            .arg(&paths.socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    Cri::connect_wait(&paths.socket, Duration::from_secs(20))
        .await
        .map_err(|e| format!("stale containerd: {e}"))?;
    let data = paths.root.parent().unwrap().parent().unwrap().to_path_buf();
    let sup = start(&ContainerdOptions {
        data_dir: data,
        private_registry: PathBuf::from("/nonexistent/registries.yaml"),
        binary: Some(wrapper.to_path_buf()),
    })
    .await
    .map_err(|e| format!("start over a stale containerd: {e}"))?;
    let exited = stale.0.try_wait().map_err(|e| e.to_string())?;
    sup.shutdown().await;
    if exited.is_none() {
        return Err("the stale containerd still runs".into());
    }
    eprintln!("a stale containerd was stopped and replaced");
    Ok(())
}

/// Kills containerd and waits for the supervisor to bring it back.
async fn restarts_after_a_crash(sup: &Supervisor) -> Result<(), String> {
    let old = sup.pid().ok_or("no containerd pid")?;
    let t = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(new) = sup.pid().filter(|p| *p != old) {
            Cri::connect_wait(sup.socket(), Duration::from_secs(10))
                .await
                .map_err(|e| format!("after restart: {e}"))?;
            eprintln!(
                "containerd restarted as pid {new} {:?} after kill -9",
                t.elapsed()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("containerd was not restarted within 20s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exercise(paths: &Paths, socket: &Path) -> Result<(), String> {
    let c = Cri::connect_wait(socket, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    write_cni_config(paths, "10.42.1.0/24").map_err(|e| e.to_string())?;

    let t = Instant::now();
    ensure_pause_image(&c).await.map_err(|e| e.to_string())?;
    eprintln!("pause image imported in {:?}", t.elapsed());
    let t = Instant::now();
    ensure_pause_image(&c).await.map_err(|e| e.to_string())?;
    eprintln!("pause image present check {:?}", t.elapsed());

    // an OCI archive (zstd) and a docker archive, through import_dir
    let img = busybox_image();
    let oci_tar = paths.images_dir.join("busybox.tar");
    img.write_archive("busybox:skiff-test", &oci_tar)
        .map_err(|e| e.to_string())?;
    let zst = paths.images_dir.join("busybox-oci.tar.zst");
    std::fs::write(
        &zst,
        zstd::encode_all(std::fs::File::open(&oci_tar).unwrap(), 3).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(&oci_tar).unwrap();
    write_docker_archive(
        &img,
        "registry.example.com/bb:docker",
        &paths.images_dir.join("busybox-docker.tar"),
    );
    std::fs::write(paths.images_dir.join("notes.txt"), "not an archive").unwrap();
    let t = Instant::now();
    let mut names = import_dir(&c, &paths.images_dir)
        .await
        .map_err(|e| e.to_string())?;
    names.sort();
    eprintln!("imported {names:?} in {:?}", t.elapsed());
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:skiff-test",
            "registry.example.com/bb:docker"
        ]
    );
    let rows = list_images(&c).await.map_err(|e| e.to_string())?;
    eprintln!("images: {rows:#?}");
    let pause = rows
        .iter()
        .find(|r| r.name == PAUSE_IMAGE)
        .expect("pause listed");
    assert!(pause.pinned && pause.size > 0 && pause.id.starts_with("sha256:"));
    assert!(rows
        .iter()
        .any(|r| r.name == "docker.io/library/busybox:skiff-test" && r.pinned));

    let logs = paths.root.parent().unwrap().join("pod-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "bb".into(),
            uid: "uid-live-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "bb".into(),
        log_directory: logs.to_string_lossy().into_owned(),
        labels: HashMap::from([("io.kubernetes.pod.uid".into(), "uid-live-1".into())]),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    };
    let mut rt = c.runtime.clone();
    let t = Instant::now();
    let sandbox = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|s| format!("RunPodSandbox: {}", s.message()))?
        .into_inner()
        .pod_sandbox_id;
    let t_sandbox = t.elapsed();
    let outcome = async {
        let status = rt
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: false,
            })
            .await
            .map_err(|s| format!("PodSandboxStatus: {}", s.message()))?
            .into_inner()
            .status
            .unwrap();
        let ip = status.network.map(|n| n.ip).unwrap_or_default();
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| format!("pod IP {ip:?}"))?;
        let net: crate::cidr::Ipv4Net = "10.42.1.0/24".parse().unwrap();
        assert!(net.contains(ip) && ip.octets()[3] > 1, "pod IP {ip}");

        let t = Instant::now();
        let container = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "main".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: "docker.io/library/busybox:skiff-test".into(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into(), "echo hi; sleep 1000".into()],
                    log_path: "main/0.log".into(),
                    linux: Some(cri::LinuxContainerConfig::default()),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await
            .map_err(|s| format!("CreateContainer: {}", s.message()))?
            .into_inner()
            .container_id;
        let t_create = t.elapsed();
        let t = Instant::now();
        rt.start_container(cri::StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .map_err(|s| format!("StartContainer: {}", s.message()))?;
        let t_start = t.elapsed();
        eprintln!(
            "RunPodSandbox {t_sandbox:?}, CreateContainer {t_create:?}, StartContainer {t_start:?}; pod IP {ip}"
        );
        let st = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: container.clone(),
                verbose: false,
            })
            .await
            .map_err(|s| format!("ContainerStatus: {}", s.message()))?
            .into_inner()
            .status
            .unwrap();
        assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32, "{st:?}");
        let log = logs.join("main/0.log");
        let mut text = String::new();
        // at most 10 s on a loaded machine
        for _ in 0..200 {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(" stdout F hi") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(text.contains(" stdout F hi"), "log: {text:?}");

        rt.stop_container(cri::StopContainerRequest {
            container_id: container.clone(),
            timeout: 0,
        })
        .await
        .map_err(|s| format!("StopContainer: {}", s.message()))?;
        rt.remove_container(cri::RemoveContainerRequest {
            container_id: container,
        })
        .await
        .map_err(|s| format!("RemoveContainer: {}", s.message()))?;
        Ok::<(), String>(())
    }
    .await;
    // always clean up the sandbox
    let stop = rt
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await;
    let remove = rt
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await;
    outcome?;
    stop.map_err(|s| format!("StopPodSandbox: {}", s.message()))?;
    remove.map_err(|s| format!("RemovePodSandbox: {}", s.message()))?;
    Ok(())
}

/// Kills and reaps a helper process when dropped.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_yaml_mirror_serves_docker_io_over_plain_http() {
    if !should_run(REGISTRY_TOOLS) {
        return;
    }
    let bed = Bed::create();
    // the registry's address lives on the namespace's loopback: nothing leaves it
    let ok = bed
        .command("ip")
        .args(["addr", "add", "192.0.2.1/32", "dev", "lo"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip addr add 192.0.2.1/32 dev lo");
    let tmp = &bed.tmp;
    let reg_cfg = tmp.path().join("registry.yml");
    std::fs::write(
        &reg_cfg,
        format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n\
             http: {{addr: \"192.0.2.1:5000\"}}\n",
            tmp.path().join("registry").display()
        ),
    )
    .unwrap();
    let _registry = Proc(
        bed.command("docker-registry")
            .arg("serve")
            .arg(&reg_cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let archive = tmp.path().join("bb.tar");
    busybox_image()
        .write_archive("busybox:mirror", &archive)
        .unwrap();
    // the registry needs a moment to listen; each try is a quick refusal until then
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pushed = false;
    while !pushed && Instant::now() < deadline {
        pushed = bed
            .command("skopeo")
            .args([
                "copy",
                "--quiet",
                "--insecure-policy",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg("docker://192.0.2.1:5000/library/busybox:mirror")
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        if !pushed {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        pushed,
        "skopeo could not push to the test registry within 20 s"
    );

    let registries = tmp.path().join("registries.yaml");
    std::fs::write(
        &registries,
        "mirrors:\n  docker.io:\n    endpoint: [\"http://192.0.2.1:5000\"]\n",
    )
    .unwrap();
    let sup = start(&bed.containerd("d", &registries))
        .await
        .expect("start containerd");
    let result = async {
        let c = Cri::connect(sup.socket())
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let mut images = c.images.clone();
        let pull = images.pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: "busybox:mirror".into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        });
        let pulled = tokio::time::timeout(Duration::from_secs(30), pull)
            .await
            .map_err(|_| "PullImage took more than 30 s".to_string())?
            .map_err(|s| format!("PullImage: {}", s.message()))?
            .into_inner()
            .image_ref;
        eprintln!("pulled busybox:mirror as {pulled} in {:?}", t.elapsed());
        let rows = list_images(&c).await.map_err(|e| e.to_string())?;
        let row = rows
            .iter()
            .find(|r| r.name == "docker.io/library/busybox:mirror")
            .ok_or_else(|| format!("pulled image not listed: {rows:?}"))?;
        assert_eq!(row.id, pulled);
        assert!(!row.pinned, "pulled images are not pinned");
        Ok::<(), String>(())
    }
    .await;
    sup.shutdown().await;
    drop(bed);
    result.unwrap();
}

#[test]
fn prerequisites_name_root_then_the_missing_packages() {
    let root = "Name:\tx\nUid:\t0\t0\t0\t0\n";
    let user = "Uid:\t1000\t1000\t1000\t1000\n";
    let tools = [("/a", "pa"), ("/b", "pb"), ("/c", "pb")];
    let why = missing_prerequisites(user, &tools, |_| true).unwrap();
    assert!(
        why.contains("need root") && why.contains("SKIFF_E2E_NODES=0"),
        "{why}"
    );
    assert_eq!(missing_prerequisites(root, &tools, |_| true), None);
    let why = missing_prerequisites(root, &tools, |p| p == "/a").unwrap();
    assert!(why.contains("apt-get install -y pb (or"), "{why}");
}
