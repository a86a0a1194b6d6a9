#[test]
fn count() {
    for seed in [1u64] {
        let (mut h, mut d) = (0, 0);
        for i in 0..2000 {
            let s = cases::generate_with(seed, i, true);
            if s.program.uses_hugetlb() { h += 1; }
            if s.description.contains("destructive") { d += 1; }
        }
        println!("seed {seed}: hugetlb {h}, destructive {d}");
    }
}
