//! A tiny classic-BPF interpreter for the unit tests: runs a compiled program on one
//! `struct seccomp_data` and returns the filter's verdict. Only the instructions ruse and
//! seccompiler emit are implemented; anything else fails the test.

use seccompiler::sock_filter;

pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    pub fn new(arch: u32, nr: u32, args: &[u64]) -> Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Data { nr, arch, args: a }
    }

    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            16..=63 if off % 4 == 0 => {
                let a = self.args[(off as usize - 16) / 8];
                if off % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load from seccomp_data offset {off}"),
        }
    }
}

pub fn run(prog: &[sock_filter], d: &Data) -> u32 {
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = &prog[pc];
        pc += 1;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => acc = d.word(i.k),
            0x06 => return i.k,
            0x05 => pc += i.k as usize,
            0x15 => pc += jump(acc == i.k),
            0x25 => pc += jump(acc > i.k),
            0x35 => pc += jump(acc >= i.k),
            0x45 => pc += jump(acc & i.k != 0),
            0x54 => acc &= i.k,
            c => panic!("unexpected BPF opcode {c:#x} at {}", pc - 1),
        }
    }
}
