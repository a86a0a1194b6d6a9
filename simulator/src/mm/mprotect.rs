//! mm/mprotect.c: mprotect (do_mprotect_pkey, mprotect_fixup).
//!
//! Invariant: a hole in the range is ENOMEM after the VMAs before it were changed, as in the kernel.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine};
use crate::observe::{Errno, Ret};
use crate::program::Prot;

impl Machine {
    /// mprotect [S 6.18 mm/mprotect.c:do_mprotect_pkey, mprotect_fixup].
    pub(crate) fn mprotect(&mut self, model: &KernelModel, s: i64, e: i64, prot: Prot) -> Ret {
        self.mprotect_pkey(model, s, e, prot, None)
    }

    /// mprotect, and with `Some(k)` (pkey_mprotect) key `k` on every VMA of the range: the key is part of
    /// the flags (VM_PKEY_BIT*), so a VMA splits where it changes and merges with neighbours of the same
    /// key [S 6.18 mm/mprotect.c:do_mprotect_pkey, calc_vm_prot_bits(prot, new_vma_pkey)].
    pub(crate) fn mprotect_pkey(&mut self, model: &KernelModel, s: i64, e: i64, prot: Prot, pkey: Option<u32>) -> Ret {
        self.pkey_exec_only_unknown(model, prot);
        // The range must start inside a VMA; every gap met on the way ends the call with ENOMEM after
        // the VMAs before it were changed.
        match self.vma_at(s) {
            Some(_) => {}
            None => return Ret::Err(Errno::ENOMEM),
        }
        let mut cur = s;
        while cur < e {
            let Some(i) = self.vma_at(cur) else { return Ret::Err(Errno::ENOMEM) };
            let v = self.vmas[i];
            let end = v.end.min(e);
            let mut nf = v.flags & !(vmf::READ | vmf::WRITE | vmf::EXEC);
            if prot.read {
                nf |= vmf::READ;
            }
            if prot.write {
                nf |= vmf::WRITE;
            }
            if prot.exec {
                nf |= vmf::EXEC;
            }
            if let Some(k) = pkey {
                nf = crate::mm::pkeys::pkey_flags(nf, k);
            }
            // "newflags >> 4 shift VM_MAY% in place of VM_%": a protection the VMA may not have (PROT_WRITE
            // on a MAP_SHARED mapping of an O_RDONLY file) is EACCES, checked before mprotect_fixup's seal
            // check; the VMAs before it keep their change [S 6.12, 6.18 mm/mprotect.c:do_mprotect_pkey;
            // T 6.18.44 case mprotect_write_on_readonly_shared_file_is_eacces].
            let may = (nf >> 4) & (vmf::READ | vmf::WRITE | vmf::EXEC);
            if nf & (vmf::READ | vmf::WRITE | vmf::EXEC) & !may != 0 {
                return Ret::Err(Errno::EACCES);
            }
            // mprotect_fixup refuses a sealed VMA; the VMAs before it keep their change
            // [S 6.12 mm/mprotect.c:mprotect_fixup].
            if v.flags & vmf::SEALED != 0 {
                return Ret::Err(Errno::EPERM);
            }
            if nf & vmf::WRITE != 0 {
                // A private mapping that becomes writable is charged: VM_ACCOUNT
                // [S 6.18 mm/mprotect.c:mprotect_fixup, "if (newflags & VM_WRITE)"].
                if v.flags & (vmf::ACCOUNT | vmf::WRITE | vmf::HUGETLB | vmf::SHARED | vmf::NORESERVE) == 0 {
                    nf |= vmf::ACCOUNT;
                }
            } else if model.mprotect_unaccounts_anon && v.flags & vmf::ACCOUNT != 0 && v.is_anonymous() && v.anon_vma.is_none() {
                // "cannot reduce our commit ... except in the anonymous case where no anon_vma has yet
                // to be assigned" [S 6.18 mm/mprotect.c:mprotect_fixup].
                nf &= !vmf::ACCOUNT;
            }
            if nf != v.flags {
                let j = match self.modify_flags_checked(model, i, cur, end, nf) {
                    Ok(j) => j,
                    Err(errno) => return Ret::Err(errno),
                };
                // "Private VM_LOCKED VMA becoming writable: trigger COW to avoid major faults next time"
                // [S 6.12 mm/mprotect.c:mprotect_fixup].
                if v.flags & (vmf::WRITE | vmf::SHARED | vmf::LOCKED) == vmf::LOCKED && nf & vmf::WRITE != 0 {
                    let _ = self.populate(model, j, cur, end);
                }
            }
            cur = end;
        }
        Ret::Ok
    }
}
