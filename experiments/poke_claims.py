"""The poke experiment's claims: each printed and recorded as held or not, with its numbers.

Best-of-k verdicts compare 95% CIs of :mod:`experiments.poke_eval`'s rows (or of paired
per-example differences, against copying the input); the latent and goal verdicts read the
results of :mod:`experiments.poke_latent` and :mod:`experiments.poke_goal`.
"""

from __future__ import annotations

from agents.common.stats import mean_ci
from experiments.claims import claim
from experiments.poke_eval import best_of_k


def _ci(row: dict, metric: str, digits: int = 4) -> str:
    lo, hi = row[f"{metric}_lo"], row[f"{metric}_hi"]
    return f"{row[metric]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def paired(errors: dict, a: str, b: str, k: int, metric: int) -> tuple[float, float, float]:
    """Mean and 95% CI of the per-example difference ``a - b`` of best-of-k L1 (0) or MSE (2)."""
    return mean_ci(best_of_k(errors, a, k)[metric] - best_of_k(errors, b, 1)[metric])


def prediction_claims(errors: dict, rows: list[dict], kmax: int, log=print) -> list[dict]:
    """Verdicts on best-of-k: EEN vs k, vs the deterministic model, models vs copying the input."""
    by = {(r["model"], r["k"]): r for r in rows}
    een1, eenk, det = by[("een", 1)], by[("een", kmax)], by[("deterministic", 1)]
    det_mse = paired(errors, "deterministic", "copy input", 1, 2)
    een_l1 = paired(errors, "een", "copy input", kmax, 0)
    return [
        claim(
            "EEN best-of-k L1 improves with k",
            eenk["l1_hi"] < een1["l1_lo"],
            f"L1 k=1 {_ci(een1, 'l1')}, k={kmax} {_ci(eenk, 'l1')}",
            log,
        ),
        claim(
            f"EEN best-of-{kmax} beats the deterministic model in L1",
            eenk["l1_hi"] < det["l1_lo"],
            f"L1 EEN {_ci(eenk, 'l1')} vs deterministic {_ci(det, 'l1')}",
            log,
        ),
        claim(
            f"EEN best-of-{kmax} beats the deterministic model in PSNR",
            eenk["psnr_lo"] > det["psnr_hi"],
            f"PSNR EEN {_ci(eenk, 'psnr', 2)} vs deterministic {_ci(det, 'psnr', 2)} dB",
            log,
        ),
        claim(
            "deterministic model beats copying the input in MSE (paired)",
            det_mse[2] < 0,
            f"MSE difference {det_mse[0]:.2e} [{det_mse[1]:.2e}, {det_mse[2]:.2e}]; PSNR of "
            f"mean MSE {det['psnr_of_mean_mse']:.2f} vs copy "
            f"{by[('copy input', 1)]['psnr_of_mean_mse']:.2f} dB",
            log,
        ),
        claim(
            f"EEN best-of-{kmax} beats copying the input in L1 (paired)",
            een_l1[2] < 0,
            f"L1 difference {een_l1[0]:.4f} [{een_l1[1]:.4f}, {een_l1[2]:.4f}]",
            log,
        ),
    ]


def other_claims(regression: dict, goal: dict, log=print) -> list[dict]:
    """Verdicts on the latent regression and on goal reaching."""
    return [
        claim(
            "latent carries the poke (R^2 from z > 0 and > R^2 from the frame)",
            regression["r2_latent"] > max(regression["r2_frame"], 0.0),
            f"R^2 z {regression['r2_latent']:.3f} vs frame {regression['r2_frame']:.3f} "
            f"(direction: z {regression['r2_latent_direction']:.3f}, frame "
            f"{regression['r2_frame_direction']:.3f})",
            log,
        ),
        claim(
            "planned pokes reach goals more often than random pokes",
            goal["planned"]["lo"] > goal["random"]["hi"],
            f"success planned {goal['planned']['rate']:.2f} [{goal['planned']['lo']:.2f}, "
            f"{goal['planned']['hi']:.2f}], random {goal['random']['rate']:.2f}, random aimed "
            f"{goal['random_aimed']['rate']:.2f}",
            log,
        ),
    ]
