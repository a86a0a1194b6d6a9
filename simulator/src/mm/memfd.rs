//! mm/memfd.c: file seals (fcntl F_ADD_SEALS) and the checks other calls make against them
//! (memfd_check_seals_mmap in do_mmap, shmem_setattr and shmem_fallocate, hugetlbfs_setattr and
//! hugetlbfs_punch_hole, madvise_remove through vfs_fallocate).
//!
//! Invariant: seals live on the inode (`FileObj::seals`) and are only ever added. F_SEAL_WRITE is only
//! added while no VMA maps the file with VM_SHARED|VM_MAYWRITE (the inode's i_mmap_writable count is then
//! zero); the count is derived from the VMAs, never kept separately.

use crate::kernel::KernelModel;
use crate::machine::{vmf, Machine};
use crate::observe::{Errno, Ret};
use crate::program::{MapSpec, SealKind};

/// F_SEAL_WRITE | F_SEAL_FUTURE_WRITE [S 6.18 mm/memfd.c:is_write_sealed].
pub(crate) const WRITE_SEALS: u32 = 0x0008 | 0x0010;

impl Machine {
    /// The seals of object `obj` (0 for one without, e.g. a disk file).
    pub(crate) fn seals(&self, obj: usize) -> u32 {
        self.objs[obj].seals.unwrap_or(0)
    }

    /// fcntl(F_ADD_SEALS) on scenario file `file` [S 6.1 (Debian), 6.12 (Debian), 6.18 mm/memfd.c:
    /// memfd_fcntl, memfd_add_seals; T 6.18.44 probe]:
    /// * a closed fd: EBADF (fdget in do_fcntl);
    /// * an fd without FMODE_WRITE (O_RDONLY): EPERM, checked first;
    /// * a file without seals (a disk file): EINVAL (memfd_file_seals_ptr is NULL);
    /// * F_SEAL_SEAL already set (every tmpfs/hugetlbfs inode, and a memfd without MFD_ALLOW_SEALING):
    ///   EPERM, even with no seals asked for;
    /// * adding F_SEAL_WRITE: mapping_deny_writable fails EBUSY while any VMA maps the file with
    ///   VM_SHARED|VM_MAYWRITE (a read-only MAP_SHARED mapping of a writable fd counts: it may be
    ///   mprotected writable); memfd_wait_for_pins then waits for pages with extra references (GUP
    ///   pins), which no scenario takes.
    ///
    /// Seals are ORed in; asking again for one already set is 0.
    pub(crate) fn add_seals(&mut self, file: usize, seals: &[SealKind]) -> Ret {
        if self.closed_fds.contains(&file) {
            return Ret::Err(Errno::EBADF);
        }
        if self.objs[file].readonly {
            return Ret::Err(Errno::EPERM);
        }
        let Some(cur) = self.objs[file].seals else { return Ret::Err(Errno::EINVAL) };
        if cur & SealKind::Seal.value() != 0 {
            return Ret::Err(Errno::EPERM);
        }
        let bits = SealKind::bits(seals);
        if bits & SealKind::Write.value() != 0 && cur & SealKind::Write.value() == 0 && self.maps_writable(file) {
            return Ret::Err(Errno::EBUSY);
        }
        self.objs[file].seals = Some(cur | bits);
        Ret::Ok
    }

    /// Some VMA maps object `obj` with VM_SHARED|VM_MAYWRITE (mapping_map_writable raised
    /// i_mmap_writable for it) [S 6.18 include/linux/mm.h:is_shared_maywrite; mm/vma.c:__mmap_region].
    pub(crate) fn maps_writable(&self, obj: usize) -> bool {
        self.vmas.iter().any(|v| v.obj == Some(obj) && v.flags & (vmf::SHARED | vmf::MAYWRITE) == vmf::SHARED | vmf::MAYWRITE)
    }

    /// The write-seal check of an mmap of a file: `Err(EPERM)` for MAP_SHARED with PROT_WRITE, and
    /// whether a read-only MAP_SHARED mapping loses VM_MAYWRITE (so mprotect cannot make it writable:
    /// EACCES, and MADV_REMOVE is EACCES) [S 6.12, 6.18 mm/memfd.c:memfd_check_seals_mmap,
    /// check_write_seal; S 6.1 (Debian) mm/mmap.c:do_mmap is_readonly_sealed; T 6.18.44 probe: `rd sh mr
    /// me ms`]. A private mapping is unaffected (it may still write its COW copies). `early`: the EPERM is
    /// answered before a MAP_FIXED unmaps the old range (see
    /// `KernelModel::future_write_mmap_refused_before_unmap`).
    pub(crate) fn mmap_seal_check(&self, model: &KernelModel, m: &MapSpec) -> SealCheck {
        let Some((f, _)) = m.backing.file() else { return SealCheck::Ok { drop_maywrite: false } };
        let seals = self.seals(f as usize);
        if seals & WRITE_SEALS == 0 || !m.backing.is_shared() || self.objs[f as usize].readonly {
            return SealCheck::Ok { drop_maywrite: false };
        }
        if !m.prot.write {
            return SealCheck::Ok { drop_maywrite: true };
        }
        let early = model.future_write_mmap_refused_before_unmap || seals & SealKind::Write.value() != 0;
        SealCheck::Eperm { early }
    }
}

/// The answer of [`Machine::mmap_seal_check`].
pub(crate) enum SealCheck {
    Ok { drop_maywrite: bool },
    Eperm { early: bool },
}
