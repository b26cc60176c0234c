"""Error bars per Fermi level: do they bound the true error at every level and component?

For each case of ``benchmarks/convergence.py`` this runs ours with ``--tolerance`` and compares,
per (Fermi level, component), the true error against that script's dense reference (1.5x
denser; cached in the temporary directory by it, or computed here when the predicted time is
below ``--ref-max-seconds``) with two bars: the raw change between the last meshes and the
bar the package reports (the largest raw change nearby, ``convergence.level_envelope``).
Prints, per case, how many of the significant pairs (|K_ref| > 2 % of max|K_ref|) each covers
and the worst ratio true / bar. docs/convergence.md, "Error bars per Fermi level".

    python benchmarks/error_bars.py --cases te-300K srsi2-300K te-tetra
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convergence as bench  # noqa: E402  (benchmarks/convergence.py: cases, loading, references)

TOLERANCES = {"te-tetra": 0.015, "srsi2-tetra": 0.05}


def run(name, ref_max_seconds):
    """(raw bars, reported bars, true error, K_ref) of one case, K units (A), or None."""
    import gme_wannier.calculate as calc
    from gme_wannier.convergence import ConvergenceOptions, avoid_special

    case = bench.CASES[name]
    kernel = case.get("kernel", "surface")
    tol = TOLERANCES.get(name, 0.01)
    model, st = bench.load_case(case)
    seen = {}
    envelope = calc.level_envelope

    def recording(err, ef, width):  # the raw estimate on its way into the reported bars
        seen["raw"] = np.array(err, dtype=float)
        return envelope(err, ef, width)

    calc.level_envelope = recording
    try:
        t = time.perf_counter()
        res = bench._compute(model, st, kernel=kernel,
                             convergence=ConvergenceOptions(tolerance=tol, max_kpoints=case.get("max_kpoints")))
        wall = time.perf_counter() - t
    finally:
        calc.level_envelope = envelope
    final = res.info["mesh"]["meshes"][-1]
    ref_mesh = tuple(avoid_special(int(np.ceil(case["ref_factor"] * n))) for n in final["mesh"])
    scale_n = np.prod(ref_mesh) / np.prod(final["mesh"])
    ref = bench.reference(name, case, model, st, ref_mesh, predicted_s=final["seconds"] * scale_n,
                          max_s=ref_max_seconds)
    if ref is None:
        return None
    K = np.asarray(res.K["total"])
    to_K = K.ravel()[np.argmax(np.abs(K))] / np.asarray(res.alpha["total"]).ravel()[np.argmax(np.abs(K))]
    reported = np.asarray(res.alpha_error) * to_K  # alpha units back to K units
    bench.say(f"  {name}: --tolerance {tol}, {wall:.0f} s, final mesh {'x'.join(map(str, final['mesh']))}, "
              f"reference {'x'.join(map(str, ref_mesh))}")
    return seen["raw"], reported, np.abs(K - ref[0]), ref[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["te-300K", "srsi2-300K", "te-tetra"], choices=sorted(bench.CASES))
    ap.add_argument("--ref-max-seconds", type=float, default=900.0,
                    help="compute a missing reference only when predicted below this (default 900)")
    args = ap.parse_args(argv)
    for name in args.cases:
        out = run(name, args.ref_max_seconds)
        if out is None:
            bench.say(f"  {name}: no reference (run benchmarks/convergence.py --cases {name} first)")
            continue
        raw, reported, true, ref = out
        sig = np.abs(ref) > 0.02 * np.abs(ref).max()
        line = [f"  {name}: {sig.sum()} significant (level, component) pairs"]
        for label, bar in (("raw change", raw), ("reported bar", reported)):
            line.append(f"{label}: covers {np.sum(bar[sig] >= true[sig])}, worst true/bar "
                        f"{np.max(true[sig] / np.maximum(bar[sig], 1e-300)):.2f}")
        bench.say("; ".join(line))


if __name__ == "__main__":
    main()
