//! containerd for the agent: supervision, generated config, registries, CNI config, images and skiff's pause image (being written).
