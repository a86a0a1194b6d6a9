//! Protection keys: pkey_alloc, pkey_free and pkey_mprotect (mm/mprotect.c), the key a VMA carries in
//! its flags (VM_PKEY_BIT0..3), and the thread's rights register (x86 PKRU, arch/x86/include/asm/pkru.h)
//! that the fault handler, GUP and the mseal discard rule consult.
//!
//! Invariants: without `Pkeys::X86` no VMA carries a key other than 0 and PKRU stays 0 (every access
//! allowed); key 0 is allocated at mm creation with PKU [S 6.12 arch/x86/include/asm/mmu_context.h:
//! init_new_context]; the allocation map and PKRU are copied by fork (arch_dup_pkeys; the FPU state).

use crate::kernel::{KernelModel, Pkeys};
use crate::machine::{vmf, Machine, Unsupported, Vma};
use crate::observe::{Errno, Ret};
use crate::program::{PkeyRights, Prot};

/// VM_PKEY_SHIFT on x86_64: VM_PKEY_BIT0 is VM_HIGH_ARCH_0, bit 32 [S 6.12 include/linux/mm.h].
pub(crate) const PKEY_SHIFT: u32 = 32;
pub(crate) const PKEY_MASK: u64 = 0xf << PKEY_SHIFT;

/// init_pkru_value: every key but 0 access-disabled (AD), "as restrictive as possible" [S 6.12
/// arch/x86/mm/pkeys.c:init_pkru_value, PKRU_AD_MASK].
pub(crate) const INIT_PKRU: u32 = 0x5555_5554;

/// The key a VMA carries (vma_pkey).
pub(crate) fn vma_pkey(v: &Vma) -> u32 {
    ((v.flags & PKEY_MASK) >> PKEY_SHIFT) as u32
}

impl Machine {
    /// The start state of a new mm and its thread.
    pub(crate) fn pkeys_init(model: &KernelModel) -> (u16, u32) {
        match model.pkeys {
            Pkeys::X86 => (1, INIT_PKRU),
            _ => (0, 0),
        }
    }

    /// arch_vma_access_permitted(vma, write, false, false): PKRU lets this thread read (or write) the VMA's
    /// key; access-disable denies writes too [S 6.12 arch/x86/include/asm/mmu_context.h,
    /// arch/x86/include/asm/pkru.h:__pkru_allows_read/__pkru_allows_write].
    pub(crate) fn pkru_allows(&self, v: &Vma, write: bool) -> bool {
        let bits = self.pkru.checked_shr(2 * vma_pkey(v)).unwrap_or(0) & 3;
        if write {
            bits == 0
        } else {
            bits & 1 == 0
        }
    }

    /// mm_pkey_is_allocated [S 6.12 arch/x86/include/asm/pkeys.h]: below arch_max_pkey() (16 with
    /// OSPKE, else 1), not the execute-only key (-1 with OSPKE until one is taken, which is not modelled;
    /// 0 without), set in the map.
    fn pkey_allocated(&self, model: &KernelModel, pkey: i32) -> bool {
        let x86 = model.pkeys == Pkeys::X86;
        let max = if x86 { 16 } else { 1 };
        let exec_only = if x86 { -1 } else { 0 };
        (0..max).contains(&pkey) && pkey != exec_only && self.pkey_map & (1 << pkey) != 0
    }

    /// The pkey syscalls need an answer for this kernel's keys; `None` when the model knows it.
    fn pkeys_unknown(model: &KernelModel) -> Option<Unsupported> {
        match &model.pkeys {
            Pkeys::Unknown => Some("protection keys were not detected for this kernel (facts without `pkeys`)".into()),
            Pkeys::NotModelled(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// pkey_alloc(0, rights) [S 6.12, 6.18 mm/mprotect.c:pkey_alloc; arch/x86/include/asm/pkeys.h:
    /// mm_pkey_alloc (ffz of the map: the lowest free key); arch/x86/kernel/fpu/xstate.c:
    /// arch_set_user_pkey_access (the key's two PKRU bits become `rights`)].
    pub(crate) fn pkey_alloc(&mut self, model: &KernelModel, rights: PkeyRights) -> Result<Ret, Unsupported> {
        if let Some(why) = Self::pkeys_unknown(model) {
            return Err(why);
        }
        Ok(match model.pkeys {
            Pkeys::Absent { syscalls: false, .. } => Ret::Err(Errno::ENOSYS),
            Pkeys::Absent { first_takes_key0: true, .. } if self.pkey_map == 0 => {
                // Key 0 is taken and never given back (see `PkeyFacts::first_alloc_errno`).
                self.pkey_map = 1;
                Ret::Err(Errno::EINVAL)
            }
            Pkeys::Absent { alloc, .. } => Ret::Err(alloc),
            _ => {
                if self.pkey_map == 0xffff {
                    return Ok(Ret::Err(Errno::ENOSPC));
                }
                let k = (!self.pkey_map).trailing_zeros();
                self.pkey_map |= 1 << k;
                self.pkru = (self.pkru & !(3 << (2 * k))) | (rights.value() << (2 * k));
                Ret::Key(k)
            }
        })
    }

    /// pkey_free: EINVAL unless allocated (key 0 included: it can be freed and allocated again); the VMAs
    /// and PKRU keep what they had [S 6.12 mm/mprotect.c:pkey_free, arch/x86/include/asm/pkeys.h:
    /// mm_pkey_free].
    pub(crate) fn pkey_free(&mut self, model: &KernelModel, pkey: i32) -> Result<Ret, Unsupported> {
        if let Some(why) = Self::pkeys_unknown(model) {
            return Err(why);
        }
        Ok(match model.pkeys {
            Pkeys::Absent { syscalls: false, .. } => Ret::Err(Errno::ENOSYS),
            // powerpc without the MMU's key feature (hash MMU under qemu TCG) answers -1 before it looks
            // at the key: EPERM, where the generic stub and x86 say EINVAL [S 6.12
            // arch/powerpc/include/asm/pkeys.h:mm_pkey_free "if (!mmu_has_feature(MMU_FTR_PKEY)) return
            // -1;", mm/mprotect.c:pkey_free returns it; T Debian 7.2.13 powerpc64le-64k hash MMU: cases
            // pkey_alloc_rights_free_and_reuse step 4, pkey_mprotect_splits_and_merges_vmas_by_key step 6].
            Pkeys::Absent { .. } if model.facts.arch.starts_with("ppc64") => Ret::Err(Errno::EPERM),
            Pkeys::Absent { .. } if model.facts.arch != "x86_64" && pkey == 0 => {
                return Err(format!("pkey_free(0) without protection keys on {} is not modelled", model.facts.arch))
            }
            _ if !self.pkey_allocated(model, pkey) => Ret::Err(Errno::EINVAL),
            _ => {
                self.pkey_map &= !(1 << pkey);
                Ret::Ok
            }
        })
    }

    /// pkey_mprotect: a key that is not allocated is EINVAL before the VMAs are looked at; then mprotect,
    /// with `pkey` replacing each VMA's key (-1 keeps it) [S 6.18 mm/mprotect.c:do_mprotect_pkey,
    /// arch/x86/mm/pkeys.c:__arch_override_mprotect_pkey].
    pub(crate) fn pkey_mprotect(&mut self, model: &KernelModel, s: i64, e: i64, prot: Prot, pkey: i32) -> Result<Ret, Unsupported> {
        if let Some(why) = Self::pkeys_unknown(model) {
            return Err(why);
        }
        match model.pkeys {
            Pkeys::Absent { syscalls: false, .. } => return Ok(Ret::Err(Errno::ENOSYS)),
            Pkeys::Absent { .. } if model.facts.arch != "x86_64" && pkey == 0 => {
                return Err(format!("pkey_mprotect with key 0 without protection keys on {} is not modelled", model.facts.arch))
            }
            _ => {}
        }
        if pkey != -1 && !self.pkey_allocated(model, pkey) {
            return Ok(Ret::Err(Errno::EINVAL));
        }
        Ok(self.mprotect_pkey(model, s, e, prot, (pkey != -1).then_some(pkey as u32)))
    }

    /// `pkey_set`: WRPKRU of this thread's rights for `pkey`. x86 with PKU only; elsewhere the instruction
    /// is #UD (SIGILL) and the step is Unsupported.
    pub(crate) fn pkey_set(&mut self, model: &KernelModel, pkey: u32, rights: PkeyRights) -> Result<Ret, Unsupported> {
        if let Some(why) = Self::pkeys_unknown(model) {
            return Err(why);
        }
        match model.pkeys {
            Pkeys::X86 => {
                self.pkru = (self.pkru & !(3 << (2 * pkey))) | (rights.value() << (2 * pkey));
                Ok(Ret::Ok)
            }
            _ => Err(format!(
                "pkey_set: the CPU has no protection keys here ({}; pkey_alloc answered {:?}), so WRPKRU would be #UD",
                model.facts.arch,
                model.facts.pkeys.and_then(|p| p.alloc_errno)
            )),
        }
    }

    /// An execute-only protection on a CPU with PKU takes the execute-only key (allocated on first use,
    /// its PKRU bits access-disabled) [S 6.12 arch/x86/mm/pkeys.c:__execute_only_pkey,
    /// __arch_override_mprotect_pkey; mm/mmap.c:do_mmap]; not modelled yet.
    pub(crate) fn pkey_exec_only_unknown(&mut self, model: &KernelModel, prot: Prot) {
        if model.pkeys == Pkeys::X86 && prot == (Prot { read: false, write: false, exec: true }) {
            self.unknown.get_or_insert_with(|| {
                "an execute-only protection on a CPU with PKU (the execute-only pkey) is not modelled".into()
            });
        }
    }
}

/// The VMA flags for key `k`.
pub(crate) fn pkey_flags(flags: u64, k: u32) -> u64 {
    (flags & !PKEY_MASK) | ((k as u64) << PKEY_SHIFT)
}

#[allow(dead_code)]
const _: () = assert!(vmf::SEALED & PKEY_MASK == 0 && vmf::RESV_OWNER & PKEY_MASK == 0 && vmf::DROPPABLE & PKEY_MASK == 0);
