//! End-to-end check against the real containerd (ignored by default: needs root, containerd,
//! runc, the CNI plugins and `ip`): run as root with
//! `cargo test -p skiff-agent containerd::live_tests -- --ignored --nocapture`.
//! containerd runs in a network namespace the test creates and deletes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use serde_json::json;

use super::oci::{layer_tar, LayerEntry, OciImage};
use super::*;
use crate::cri::Cri;

/// Deletes the network namespace when dropped.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        let ok = std::process::Command::new("ip")
            .args(["-n", name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "lo up in {name}");
        Netns(name.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn can_run() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false);
    let have = |b: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(b).is_file())
    };
    root && have("containerd") && have("runc") && have("ip") && Path::new("/bin/busybox").is_file()
}

/// Safety net after a failure: lazily unmounts anything containerd left under `dir`.
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut left: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    left.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in left {
        eprintln!("unmounting leftover {m}");
        let _ = std::process::Command::new("umount")
            .args(["-l", m])
            .status();
    }
}

/// busybox as an image: `/bin/busybox` plus applet links.
fn busybox_image() -> OciImage {
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
    for applet in ["sh", "sleep", "echo", "cat", "ls", "hostname", "ip"] {
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
#[ignore = "needs root, containerd, runc and CNI plugins; run with --ignored"]
async fn containerd_runs_a_busybox_pod_in_a_netns() {
    if !can_run() {
        eprintln!("skipped: needs root, containerd, runc, ip and /bin/busybox");
        return;
    }
    let ns = Netns::create(&format!("skiffh-ctd-{}", std::process::id()));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    // containerd (and so its shims and the CNI plugins) runs inside the test's network
    // namespace; nsenter, not `ip netns exec`, which remounts /sys and hides the cgroup mounts
    let wrapper = tmp.path().join("containerd-in-netns");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec nsenter --net=/run/netns/{} containerd \"$@\"\n",
            ns.0
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let t = Instant::now();
    let sup = start(&ContainerdOptions {
        data_dir: data.clone(),
        private_registry: tmp.path().join("registries.yaml"),
        binary: Some(wrapper.clone()),
    })
    .await
    .expect("start containerd");
    eprintln!("containerd {} ready in {:?}", sup.version(), t.elapsed());
    assert!(sup.version().starts_with("1."), "{}", sup.version());
    let paths = Paths::new(&data);
    let mut result = exercise(&paths, sup.socket()).await;
    if result.is_ok() {
        result = restarts_after_a_crash(&sup).await;
    }
    let t = Instant::now();
    sup.shutdown().await;
    eprintln!("containerd shut down in {:?}", t.elapsed());
    if result.is_ok() {
        result = replaces_a_stale_containerd(&paths, &wrapper).await;
    }
    drop(ns);
    unmount_under(tmp.path());
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
        for _ in 0..40 {
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

fn in_netns(ns: &str, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}")).args(args);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, containerd, docker-registry and skopeo; run with --ignored"]
async fn registries_yaml_mirror_serves_docker_io_over_plain_http() {
    let have = |b: &str| Path::new("/usr/bin").join(b).is_file();
    if !can_run() || !have("docker-registry") || !have("skopeo") {
        eprintln!("skipped: needs root, containerd, docker-registry and skopeo");
        return;
    }
    let ns = Netns::create(&format!("skiffh-ctr-{}", std::process::id()));
    // the registry's address lives on the namespace's loopback: nothing leaves it
    let ok = std::process::Command::new("ip")
        .args(["-n", &ns.0, "addr", "add", "192.0.2.1/32", "dev", "lo"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip addr add 192.0.2.1/32 dev lo");
    let tmp = tempfile::tempdir().unwrap();
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
        in_netns(&ns.0, &["docker-registry", "serve"])
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
    let mut pushed = false;
    for _ in 0..50 {
        let st = in_netns(
            &ns.0,
            &[
                "skopeo",
                "copy",
                "--quiet",
                "--insecure-policy",
                "--dest-tls-verify=false",
            ],
        )
        .arg(format!("oci-archive:{}", archive.display()))
        .arg("docker://192.0.2.1:5000/library/busybox:mirror")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
        if st.success() {
            pushed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(pushed, "skopeo could not push to the test registry");

    let wrapper = tmp.path().join("containerd-in-netns");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec nsenter --net=/run/netns/{} containerd \"$@\"\n",
            ns.0
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let registries = tmp.path().join("registries.yaml");
    std::fs::write(
        &registries,
        "mirrors:\n  docker.io:\n    endpoint: [\"http://192.0.2.1:5000\"]\n",
    )
    .unwrap();
    let sup = start(&ContainerdOptions {
        data_dir: tmp.path().join("d"),
        private_registry: registries,
        binary: Some(wrapper),
    })
    .await
    .expect("start containerd");
    let result = async {
        let c = Cri::connect(sup.socket())
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let pulled = c
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: "busybox:mirror".into(),
                    ..Default::default()
                }),
                auth: None,
                sandbox_config: None,
            })
            .await
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
    drop(ns);
    unmount_under(tmp.path());
    result.unwrap();
}
