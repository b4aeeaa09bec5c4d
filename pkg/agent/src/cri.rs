//! One gRPC channel to containerd over its unix socket, shared by the CRI v1 clients
//! (`k8s-cri`) and containerd's own services (`containerd-client`: content, images, version).

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::Error;

/// containerd's namespace for everything CRI creates and sees.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// A connection to one containerd: CRI runtime and image services plus the raw channel for
/// containerd's native services (wrap requests with `containerd_client::with_namespace!`).
#[derive(Clone, Debug)]
pub struct Cri {
    pub channel: Channel,
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the containerd socket at `socket` (no retry; see [`Cri::connect_wait`]).
    pub async fn connect(socket: &Path) -> Result<Cri, Error> {
        let channel = containerd_client::connect(socket).await.map_err(|e| {
            Error::Runtime(format!(
                "cannot connect to containerd at {}: {e}: is containerd running?",
                socket.display()
            ))
        })?;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            images: ImageServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            channel,
        })
    }

    /// Connects, retrying every 50 ms until `timeout` passes and the CRI answers `Version`.
    pub async fn connect_wait(socket: &Path, timeout: Duration) -> Result<Cri, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let attempt = async {
                let mut cri = Cri::connect(socket).await?;
                cri.runtime
                    .version(k8s_cri::v1::VersionRequest::default())
                    .await
                    .map_err(|s| {
                        Error::Runtime(format!("containerd CRI version: {}", s.message()))
                    })?;
                Ok::<_, Error>(cri)
            };
            match attempt.await {
                Ok(c) => return Ok(c),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}
