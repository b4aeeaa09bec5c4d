//! skiff's pause image: a tiny static ELF that sleeps forever, assembled here byte by byte,
//! as `/pause` in a one-layer OCI image. Never downloaded.

use serde_json::json;

use super::oci::{layer_tar, LayerEntry, OciImage};
use crate::Error;

/// Where the program is mapped (the usual base of a non-PIE executable).
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;

/// The kernel's `struct sigaction` (handler, flags, restorer, mask; 32 bytes on both
/// machines) with the handler `SIG_IGN` (1): ignoring SIGCHLD makes the kernel reap children
/// at once, so pause, as PID 1 of a pod that shares its PID namespace, leaves no zombies.
const SIGACTION_IGNORE: [u8; 32] = {
    let mut a = [0u8; 32];
    a[0] = 1;
    a
};

/// The machine code (`rt_sigaction(SIGCHLD, SIG_IGN)`, then the endless pause loop) followed
/// by the sigaction data, and the ELF `e_machine` for `arch` (`std::env::consts::ARCH`).
/// Encodings checked with `llvm-mc -show-encoding`.
fn code_for(arch: &str) -> Result<(Vec<u8>, u16), Error> {
    let (mut code, machine) = match arch {
        "x86_64" => (
            vec![
                0xb8, 0x0d, 0x00, 0x00, 0x00, //       0: mov eax, 13      (__NR_rt_sigaction)
                0xbf, 0x11, 0x00, 0x00, 0x00, //       5: mov edi, 17      (SIGCHLD)
                0x48, 0x8d, 0x35, 0x13, 0x00, 0x00,
                0x00, // 10: lea rsi, [rip+19] (the data at 36)
                0x31, 0xd2, //                        17: xor edx, edx     (no old action)
                0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // 19: mov r10d, 8      (sigset size)
                0x0f, 0x05, //                        25: syscall
                0xb8, 0x22, 0x00, 0x00, 0x00, //      27: mov eax, 34      (__NR_pause)
                0x0f,
                0x05, //                        32: syscall          (returns after a signal)
                0xeb, 0xf7, //                        34: jmp -9           (back to 27)
            ],
            62, // EM_X86_64
        ),
        "aarch64" => {
            let words: [u32; 13] = [
                0xd280_0220, //  0: movz x0, #17   SIGCHLD
                0x1000_0181, //  4: adr x1, #48    the data at 52
                0xd280_0002, //  8: movz x2, #0    no old action
                0xd280_0103, // 12: movz x3, #8    sigset size
                0xd280_10c8, // 16: movz x8, #134  (__NR_rt_sigaction)
                0xd400_0001, // 20: svc #0
                0xd280_0000, // 24: movz x0, #0    fds = NULL
                0xd280_0001, // 28: movz x1, #0    nfds = 0
                0xd280_0002, // 32: movz x2, #0    timeout = NULL (forever)
                0xd280_0003, // 36: movz x3, #0    sigmask = NULL
                0xd280_0928, // 40: movz x8, #73   (__NR_ppoll)
                0xd400_0001, // 44: svc #0
                0x17ff_fffa, // 48: b -24          (back to 24)
            ];
            (words.iter().flat_map(|w| w.to_le_bytes()).collect(), 183) // EM_AARCH64
        }
        other => {
            return Err(Error::Runtime(format!(
                "skiff cannot build its pause image for the {other} architecture: run the agent \
                 on x86_64 or aarch64"
            )))
        }
    };
    code.extend_from_slice(&SIGACTION_IGNORE);
    Ok((code, machine))
}

/// A static ELF64 executable for `arch` whose only job is to wait for signals forever.
pub fn pause_elf(arch: &str) -> Result<Vec<u8>, Error> {
    let (code, machine) = code_for(arch)?;
    let code_off = u64::from(EHDR_SIZE + PHDR_SIZE);
    let total = code_off + code.len() as u64;
    let mut f = Vec::with_capacity(total as usize);
    // --- ELF header (Elf64_Ehdr, 64 bytes) ---
    f.extend_from_slice(b"\x7fELF"); // e_ident[EI_MAG0..3]: magic
    f.push(2); // e_ident[EI_CLASS]: ELFCLASS64
    f.push(1); // e_ident[EI_DATA]: ELFDATA2LSB (little endian)
    f.push(1); // e_ident[EI_VERSION]: EV_CURRENT
    f.push(0); // e_ident[EI_OSABI]: System V
    f.extend_from_slice(&[0; 8]); // e_ident[EI_ABIVERSION] and padding
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC (fixed address, no relocation)
    f.extend_from_slice(&machine.to_le_bytes()); // e_machine
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version: EV_CURRENT
    f.extend_from_slice(&(BASE + code_off).to_le_bytes()); // e_entry: the first instruction
    f.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // e_phoff: program headers follow
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags: none defined for these machines
    f.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&PHDR_SIZE.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum: one PT_LOAD
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize: Elf64_Shdr size (unused)
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum: no sections
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx: SHN_UNDEF
    debug_assert_eq!(f.len(), usize::from(EHDR_SIZE));
    // --- program header (Elf64_Phdr, 56 bytes): map the whole file read + execute ---
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset: from the file's first byte
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr (ignored)
    f.extend_from_slice(&total.to_le_bytes()); // p_filesz: headers + code
    f.extend_from_slice(&total.to_le_bytes()); // p_memsz: no bss
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align: page size
    debug_assert_eq!(f.len() as u64, code_off);
    // --- code ---
    f.extend_from_slice(&code);
    Ok(f)
}

/// The pause image for this machine: `/pause` in one layer, `Entrypoint ["/pause"]`.
pub fn pause_image() -> Result<OciImage, Error> {
    let elf = pause_elf(std::env::consts::ARCH)?;
    let layer = layer_tar(&[LayerEntry::File {
        path: "pause".into(),
        mode: 0o755,
        data: elf,
    }])?;
    OciImage::build(
        vec![layer],
        json!({ "Entrypoint": ["/pause"], "WorkingDir": "/" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn headers_are_consistent() {
        for arch in ["x86_64", "aarch64"] {
            let elf = pause_elf(arch).unwrap();
            assert_eq!(&elf[..4], b"\x7fELF");
            let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
            assert_eq!(entry, BASE + 120);
            let filesz = u64::from_le_bytes(elf[96..104].try_into().unwrap());
            assert_eq!(filesz, elf.len() as u64);
        }
        assert_eq!(pause_elf("x86_64").unwrap().len(), 120 + 36 + 32);
        assert_eq!(pause_elf("aarch64").unwrap().len(), 120 + 52 + 32);
        assert!(pause_elf("riscv64").is_err());
    }

    #[test]
    fn the_pause_binary_runs_until_killed() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("pause");
        std::fs::write(&path, pause_elf(std::env::consts::ARCH).unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // another test thread's fork may briefly hold the written file open (ETXTBSY): retry
        let mut child = (0..50)
            .find_map(|_| match std::process::Command::new(&path).spawn() {
                Ok(c) => Some(c),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    None
                }
            })
            .expect("spawn the pause binary");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            child.try_wait().unwrap().is_none(),
            "pause exited on its own"
        );
        // it ignores SIGCHLD (bit 17-1 of the SigIgn mask), so its children never linger
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let ign = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
            .unwrap();
        assert_ne!(ign & (1 << 16), 0, "SigIgn {ign:#x}");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    #[test]
    fn the_image_runs_pause() {
        let img = pause_image().unwrap();
        let cfg: serde_json::Value = serde_json::from_slice(&img.blobs[1].1).unwrap();
        assert_eq!(cfg["config"]["Entrypoint"][0], "/pause");
        assert_eq!(cfg["os"], "linux");
        // deterministic: the same bytes every time, so every node has the same image ID
        assert_eq!(pause_image().unwrap().manifest, img.manifest);
    }
}
