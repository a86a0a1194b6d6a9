//! The x86 PKRU register: this thread's rights for the 16 protection keys (2 bits each: AD, then WD),
//! read with RDPKRU and written with WRPKRU (arch/x86/include/asm/special_insns.h). Both instructions
//! are #UD unless CR4.PKE is set, which CPUID reports as OSPKE (leaf 7, subleaf 0, ECX bit 4); without
//! it `read` answers 0 (every access allowed, as the kernel's read_pkru does) and `write` must not be
//! called. Other architectures: no PKRU, `ospke` is false.
//!
//! Invariant: only the worker's pkey_set step writes PKRU, and such a worker retires after its scenario.

/// CPUID says the OS enabled protection keys (OSPKE).
pub fn ospke() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID is always available on x86_64; leaf 7 reads as zeros where unsupported.
        let r = std::arch::x86_64::__cpuid_count(7, 0);
        (r.ecx >> 4) & 1 == 1
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// PKRU, or 0 without OSPKE.
pub fn read() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if !ospke() {
            return 0;
        }
        let eax: u32;
        // SAFETY: RDPKRU (0f 01 ee) with ECX = 0 reads PKRU into EAX (EDX = 0); OSPKE is set.
        unsafe {
            std::arch::asm!(".byte 0x0f, 0x01, 0xee", in("ecx") 0u32, out("eax") eax, out("edx") _, options(nomem, nostack, preserves_flags));
        }
        eax
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// Write PKRU. Call only when `ospke()`.
pub fn write(v: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(ospke(), "WRPKRU without OSPKE would be #UD");
        // SAFETY: WRPKRU (0f 01 ef) with ECX = EDX = 0 writes EAX to PKRU; OSPKE is set. It changes which
        // user pages this thread may access, so it is a memory clobber.
        unsafe {
            std::arch::asm!(".byte 0x0f, 0x01, 0xef", in("eax") v, in("ecx") 0u32, in("edx") 0u32, options(nostack, preserves_flags));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = v;
        unreachable!("no PKRU on this architecture");
    }
}

/// May this thread read pages of key `k` (no AD bit)?
pub fn allows_read(pkru: u32, k: u32) -> bool {
    k >= 16 || (pkru >> (2 * k)) & 1 == 0
}
