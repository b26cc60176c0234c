#!/bin/bash
# Regenerates the SrSi2 Wannier90 data set (no spin-orbit coupling, 4x4x4 k-mesh, 56 WFs).
# Needs Debian's quantum-espresso (6.7) and wannier90 (3.1.0). About 45-60 min on 2 cores.
# Usage: run.sh WORKDIR [PSEUDO_DIR]
#   PSEUDO_DIR holds Sr-sp_r.upf and Si_r.upf (PseudoDojo ONCV, scalar-relativistic);
#   default: the project's ../shared/pseudo beside the checkout.
set -e
here=$(cd "$(dirname "$0")" && pwd)
pseudo=$(cd "${2:-$here/../../../../../shared/pseudo}" && pwd)
mkdir -p "$1" && cd "$1"
python3 "$here/make_inputs.py" nosoc 4
sed -i "s#PSEUDO_DIR#$pseudo#" scf.in nscf.in
MPI="mpirun --allow-run-as-root -np 2"
$MPI pw.x -nk 2 -in scf.in > scf.out; grep 'Fermi energy' scf.out   # 8.50 eV here; dis_froz_max = 10.0 in srsi2.win
$MPI pw.x -nk 2 -in nscf.in > nscf.out
wannier90.x -pp srsi2
pw2wannier90.x -in pw2wan.in > pw2wan.out       # srsi2.mmn (66 MB), srsi2.amn, srsi2.uHu (170 MB, unformatted)
wannier90.x srsi2                                # srsi2.chk, _hr.dat, _tb.dat, _wsvec.dat, _centres.xyz
