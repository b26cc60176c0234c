#!/bin/bash
# Regenerates every file under validation/reference/ (run from the repository root).
# Uses .venv/bin/python (the README install: wannierberri 26.10; add numba) and Debian's postw90.x 3.1.0.
set -e
PY=${PY:-.venv/bin/python}
R=validation/reference
D=${DATA:-../shared/data}
pw() { $PY validation/run_postw90.py "$@"; }
wbr() { $PY validation/run_wannierberri.py "$@"; }
mkdir -p $R/diagnostics

# --- Te_toy_w90testsuite: the .win box (around H, 5^3, smearing 0.1) -> must equal the shipped benchmark
pw $D/Te_toy_w90testsuite/Te --win-box --out $R/Te_toy_w90testsuite_winbox_postw90
# full BZ 12^3 for a peer-vs-peer comparison (postw90 needs the binary .chk: made by run_postw90 in scratch)
for ws in false true; do W=${ws:0:1}; W=${W^^}
  pw $D/Te_toy_w90testsuite/Te --mesh 12 12 12 --smr 0.1 --efermi 2 10 0.5 --ws $ws --out $R/Te_toy_w90testsuite_full12_smr0.1_ws${W}_postw90
done
wbr scratch/postw90/Te_toy_w90testsuite_winbox/Te --mesh 12 12 12 --smr 0.1 --efermi 2 10 0.5 --out $R/Te_toy_w90testsuite_full12_smr0.1_wannierberri

# --- Te_tut24: the .win box (0.2^3 around H, 50^3, smearing 0.01) -> must equal reference_postw90_Te-gyrotropic-K_orb.dat
pw $D/Te_tut24/Te --win-box --out $R/Te_tut24_winbox_postw90
# full BZ meshes, Gaussian 0.02 eV, E_F 5.90..6.20 step 0.01
for N in 24 30 32 40; do
  for ws in true false; do W=${ws:0:1}; W=${W^^}
    pw $D/Te_tut24/Te --mesh $N $N $N --smr 0.02 --efermi 5.90 6.20 0.01 --ws $ws --out $R/Te_tut24_full${N}_smr0.02_ws${W}_postw90
  done
  wbr $D/Te_tut24/Te --mesh $N $N $N --smr 0.02 --efermi 5.90 6.20 0.01 --out $R/Te_tut24_full${N}_smr0.02_wannierberri
done
# diagnostics: C (H only) and D (H + AA) tensors from both peers on 32^3
for ws in true false; do W=${ws:0:1}; W=${W^^}
  pw $D/Te_tut24/Te --mesh 32 32 32 --smr 0.02 --efermi 5.90 6.20 0.01 --ws $ws --extra-tasks "-C -D0" \
     --workdir scratch/postw90/diag_CD32_ws$W --out $R/diagnostics/Te_tut24_full32_smr0.02_ws${W}_postw90_KCD
done
wbr $D/Te_tut24/Te --mesh 32 32 32 --smr 0.02 --efermi 5.90 6.20 0.01 --extra-tasks C D \
    --out $R/diagnostics/Te_tut24_full32_smr0.02_wannierberri_KCD

# --- Te_soc: orbital + spin, full BZ 16^3, Gaussian 0.02, E_F 5.95..6.20
for ws in true false; do W=${ws:0:1}; W=${W^^}
  pw $D/Te_soc/Te --mesh 16 16 16 --smr 0.02 --efermi 5.95 6.20 0.01 --ws $ws --out $R/Te_soc_full16_smr0.02_ws${W}_postw90
done
wbr $D/Te_soc/Te --mesh 16 16 16 --smr 0.02 --efermi 5.95 6.20 0.01 --out $R/Te_soc_full16_smr0.02_wannierberri

# --- Te_qe_wannierberri (WannierBerri only): orbital + spin, 16^3, Gaussian 0.02, E_F 5.80..6.10
wbr $D/Te_qe_wannierberri/system --npz --mesh 16 16 16 --smr 0.02 --efermi 5.80 6.10 0.01 \
    --out $R/Te_qe_wannierberri_full16_smr0.02_wannierberri

# --- peer-vs-peer and symmetry tables (validation/reference/comparisons.txt)
{
  for N in 24 30 32 40; do
    $PY validation/compare.py $R/Te_tut24_full${N}_smr0.02_wsT_postw90.npz $R/Te_tut24_full${N}_smr0.02_wannierberri.npz
    $PY validation/compare.py $R/Te_tut24_full${N}_smr0.02_wsF_postw90.npz $R/Te_tut24_full${N}_smr0.02_wannierberri.npz
  done
  for key in K_orb K_spin; do
    $PY validation/compare.py $R/Te_soc_full16_smr0.02_wsT_postw90.npz $R/Te_soc_full16_smr0.02_wannierberri.npz --key $key
    $PY validation/compare.py $R/Te_soc_full16_smr0.02_wsF_postw90.npz $R/Te_soc_full16_smr0.02_wannierberri.npz --key $key
    $PY validation/compare.py $R/Te_qe_wannierberri_full16_smr0.02_wannierberri.npz --key $key
  done
  $PY validation/compare.py $R/Te_toy_w90testsuite_full12_smr0.1_wsF_postw90.npz $R/Te_toy_w90testsuite_full12_smr0.1_wannierberri.npz
  for key in C D K_orb; do
    $PY validation/compare.py $R/diagnostics/Te_tut24_full32_smr0.02_wsT_postw90_KCD.npz $R/diagnostics/Te_tut24_full32_smr0.02_wannierberri_KCD.npz --key $key
  done
} > $R/comparisons.txt 2>&1
