"""Poke prediction under uncertainty with the Error-Encoding Network (Henaff et al. 2017, sec. 4).

From one frame, predict the frame after an unknown poke (Agrawal et al. 2016). Measures:

1. best-of-k L1 and PSNR (mean, 95% CI) on held-out pokes for the deterministic model, the EEN
   (latents drawn from the training bank) and a conditional VAE, k = 1, 5, 10, 50, 200;
2. a PNG of test frames with the deterministic prediction and EEN samples beside the truth;
3. how much of the poke the latent carries: ridge regression R^2 from z to the poke parameters
   on held-out pokes, against a regression from the input frame alone;
4. goal reaching: success rate of pokes planned by gradient descent through an action-
   conditioned forward model, against random pokes.

``python -m experiments.poke`` (CPU, a few minutes) or ``--full`` (paper scale, for a GPU).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tyro

from envs.poke import dataset, task
from envs.poke.env import PokeEnv
from envs.poke.params import PokeParams
from experiments import io
from world_models import een
from world_models.trainer import TrainerConfig, fit


@dataclasses.dataclass(frozen=True)
class Config:
    """Poke experiment settings; ``full`` switches the sizes to paper scale (see properties)."""

    full: bool = False
    """Paper-scale run (64x64 frames, 64 maps, 50k pokes, long training): meant for a GPU."""
    seed: int = 0
    """Seed of the data, the initialisations and the evaluation draws."""
    run_name: str | None = None
    """Results subfolder name (default: a timestamp)."""
    results_root: str = "results/poke"
    """Where run folders are created."""
    data_root: str = "data/poke"
    """Where generated datasets are cached (one folder per data config)."""
    train_examples: int = 1500
    """Training pokes (default scale)."""
    test_examples: int = 300
    """Held-out pokes for the latent regression; the first ``eval_examples`` also for best-of-k."""
    eval_examples: int = 100
    """Held-out pokes scored best-of-k (each decoded max(ks) times per model)."""
    image_size: int = 24
    """Frame side [px] (default scale)."""
    features: int = 16
    """Conv feature maps (default scale; the paper uses 64)."""
    latent_dim: int = 8
    """EEN/CVAE latent size nz."""
    kl_weight: float = 1e-3
    """CVAE KL weight against the per-pixel loss."""
    loss: str = "l2"
    """Per-pixel loss at default scale. The paper's L1 ("l1", used by ``--full``) gives tiny
    gradients when only a few pixels change, and in a CPU-sized run the latent path of f never
    comes alive (measured: |f(x,z) - f(x,z')| ~ 1e-5 after 4 epochs with L1, ~1e-2 with L2)."""
    epochs: int = 6
    """Epochs per training phase (default scale)."""
    learning_rate: float = 2e-3
    """Adam step size at default scale (``--full`` uses the paper's 5e-4)."""
    batch_size: int = 32
    """Minibatch size at default scale (``--full`` uses the paper's 64)."""
    ks: tuple[int, ...] = (1, 5, 10, 50, 200)
    """Numbers of samples for best-of-k."""
    num_workers: int = 2
    """Processes generating data."""
    forward_examples: int = 2000
    """Single-object pokes (states only) to train the action-conditioned forward model."""
    forward_epochs: int = 40
    """Forward-model epochs (default scale)."""
    goal_episodes: int = 40
    """Goal-reaching episodes per policy."""
    goal_pokes: int = 3
    """Pokes allowed per goal-reaching episode."""
    plan_restarts: int = 64
    """Random initial pokes refined by gradient descent."""
    plan_steps: int = 60
    """Gradient steps on the poke parameters."""
    plan_learning_rate: float = 0.02
    """Adam step size of the planner [m or rad per step]."""

    @property
    def num_train(self) -> int:
        """Training pokes."""
        return 50_000 if self.full else self.train_examples

    @property
    def num_test(self) -> int:
        """Held-out pokes."""
        return 2_000 if self.full else self.test_examples

    @property
    def num_eval(self) -> int:
        """Held-out pokes scored best-of-k."""
        return 1_000 if self.full else min(self.eval_examples, self.num_test)

    @property
    def frame_size(self) -> int:
        """Frame side [px]."""
        return 64 if self.full else self.image_size

    @property
    def model(self) -> een.EENConfig:
        """Network settings."""
        return een.EENConfig(
            64 if self.full else self.features,
            self.latent_dim,
            "l1" if self.full else self.loss,
            self.kl_weight,
        )

    @property
    def trainer(self) -> TrainerConfig:
        """Optimiser settings of the three frame models."""
        return TrainerConfig(
            5e-4 if self.full else self.learning_rate,
            64 if self.full else self.batch_size,
            50 if self.full else self.epochs,
            patience=5 if self.full else self.epochs,
            seed=self.seed,
            scan=False,  # convolutions inside lax.scan run 15-40x slower on XLA:CPU
        )

    @property
    def forward_trainer(self) -> TrainerConfig:
        """Optimiser settings of the forward model."""
        epochs = 200 if self.full else self.forward_epochs
        return TrainerConfig(1e-3, 64, epochs, patience=10, seed=self.seed)

    @property
    def poke_params(self) -> PokeParams:
        """Physical constants (only the image size changes)."""
        return PokeParams(image_size=self.frame_size)


def resolved(config: Config) -> dict:
    """The config with its computed properties, as written to ``config.json``."""
    props = (
        "num_train",
        "num_test",
        "num_eval",
        "frame_size",
        "model",
        "trainer",
        "forward_trainer",
        "poke_params",
    )
    return {**io.to_jsonable(config), **{p: io.to_jsonable(getattr(config, p)) for p in props}}


def load_data(config: Config, data: dataset.PokeDataConfig, log=print) -> dict[str, np.ndarray]:
    """Generates (once, cached by fingerprint) and loads a dataset."""
    folder = Path(config.data_root) / io.config_fingerprint(data)
    try:
        return dataset.load(folder, data)
    except dataset.shards.ShardError:
        dataset.generate(data, folder, config.num_workers, log=log)
        return dataset.load(folder, data)


def train_frame_models(config: Config, train: dict, log=print) -> dict:
    """Phase one (g), phase two (f, phi; g frozen) and the CVAE; returns params and histories."""
    model, key = config.model, jax.random.PRNGKey(config.seed)
    frame_shape = train["frame"].shape[1:]
    g0 = een.init_deterministic(key, model, frame_shape)
    log("phase 1: deterministic g")
    g = fit(functools.partial(een.deterministic_loss, model), g0, train, config.trainer, log=log)
    log("phase 2: EEN f and phi, g frozen")
    e0 = een.init_een(jax.random.fold_in(key, 1), model, g.params, frame_shape)
    e = fit(functools.partial(een.een_loss, model, g.params), e0, train, config.trainer, log=log)
    log("conditional VAE")
    c0 = een.init_cvae(jax.random.fold_in(key, 2), model, g.params, frame_shape)
    c = fit(functools.partial(een.cvae_loss, model), c0, train, config.trainer, log=log)
    return {"g": g, "een": e, "cvae": c}


def best_of_k_errors(config: Config, fits: dict, bank: jax.Array, test: dict) -> dict:
    """Per-example L1 and PSNR of max(ks) samples: ``{model: (l1 (N, K), psnr (N, K))}``.

    "copy input" (predict no change) is a reference row for how much the models learned.
    """
    model, kmax, n = config.model, max(config.ks), config.num_eval
    x = een.to_float(jnp.asarray(test["frame"][:n]))
    y = een.to_float(jnp.asarray(test["next_frame"][:n]))
    det = jax.jit(jax.vmap(een.predict_deterministic, (None, None, 0)), static_argnums=0)
    l1, psnr = jax.vmap(een.frame_errors)(det(model, fits["g"].params, x), y)
    copy_l1, copy_psnr = jax.vmap(een.frame_errors)(x, y)
    out = {
        "copy input": (
            np.repeat(np.asarray(copy_l1)[:, None], kmax, 1),
            np.repeat(np.asarray(copy_psnr)[:, None], kmax, 1),
        ),
        "deterministic": (
            np.repeat(np.asarray(l1)[:, None], kmax, 1),
            np.repeat(np.asarray(psnr)[:, None], kmax, 1),
        ),
    }
    sample = jax.jit(jax.vmap(een.sample_errors, (None, None, 0, 0, 0)), static_argnums=0)
    chunk = max(1, 4000 // kmax)
    for i, (name, f_params) in enumerate(
        (("een", fits["een"].params["f"]), ("cvae", fits["cvae"].params["f"]))
    ):
        key = jax.random.PRNGKey(config.seed + 100 + i)
        zs = een.draw_latents(name, key, (n, kmax), bank, model.latent_dim)
        parts = [
            sample(model, f_params, x[j : j + chunk], y[j : j + chunk], zs[j : j + chunk])
            for j in range(0, n, chunk)
        ]
        out[name] = tuple(np.concatenate([np.asarray(p[m]) for p in parts]) for m in (0, 1))
    return out


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its normal 95% confidence interval."""
    mean = float(np.mean(values))
    half = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, mean - half, mean + half


def best_of_k_table(errors: dict, ks: tuple[int, ...]) -> tuple[list[dict], str]:
    """Rows (model, k, l1, CI, psnr, CI) and a markdown table of best-of-k scores."""
    rows = []
    for name, (l1, psnr) in errors.items():
        for k in ks:
            m, lo, hi = mean_ci(l1[:, :k].min(axis=1))
            p, plo, phi = mean_ci(psnr[:, :k].max(axis=1))
            rows.append(
                {
                    "model": name,
                    "k": k,
                    "l1": m,
                    "l1_lo": lo,
                    "l1_hi": hi,
                    "psnr": p,
                    "psnr_lo": plo,
                    "psnr_hi": phi,
                }
            )
    lines = ["| model | k | best L1 (95% CI) | best PSNR [dB] (95% CI) |", "|---|---|---|---|"]
    lines += [
        f"| {r['model']} | {r['k']} | {r['l1']:.4f} ({r['l1_lo']:.4f}-{r['l1_hi']:.4f}) | "
        f"{r['psnr']:.2f} ({r['psnr_lo']:.2f}-{r['psnr_hi']:.2f}) |"
        for r in rows
    ]
    return rows, "\n".join(lines)


def save_samples_figure(
    path: Path,
    model: een.EENConfig,
    fits: dict,
    bank: jax.Array,
    test: dict,
    seed: int,
    rows: int = 4,
    samples: int = 4,
) -> None:
    """Input, truth, deterministic prediction and EEN samples for a few test pokes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = een.to_float(jnp.asarray(test["frame"][:rows]))
    det = jax.vmap(een.predict_deterministic, (None, None, 0))(model, fits["g"].params, x)
    zs = een.draw_latents("een", jax.random.PRNGKey(seed), (rows, samples), bank, model.latent_dim)
    sample = jax.vmap(jax.vmap(een.predict_latent, (None, None, None, 0)), (None, None, 0, 0))
    een_frames = sample(model, fits["een"].params["f"], x, zs)
    titles = ["input", "truth", "deterministic"] + [f"EEN {j + 1}" for j in range(samples)]
    fig, axes = plt.subplots(rows, len(titles), figsize=(1.6 * len(titles), 1.6 * rows))
    for i in range(rows):
        images = [x[i], test["next_frame"][i] / 255.0, det[i], *een_frames[i]]
        for j, image in enumerate(images):
            axes[i, j].imshow(np.clip(np.asarray(image), 0, 1))
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ridge_r2(train_x, train_y, test_x, test_y, lambdas=(1e-2, 1e-1, 1, 10, 1e2, 1e3, 1e4, 1e5)):
    """Held-out R^2 per target of ridge regression, lambda picked on a 20% split of train."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
    y_mu = train_y.mean(0)

    def solve(xs, ys, lam):
        return np.linalg.solve(xs.T @ xs + lam * np.eye(xs.shape[1]), xs.T @ (ys - y_mu))

    def r2(xs, ys, w):
        residual = ((ys - y_mu - xs @ w) ** 2).sum(0)
        return 1.0 - residual / (((ys - ys.mean(0)) ** 2).sum(0) + 1e-12)

    cut = int(0.8 * len(train_x))
    best = max(
        lambdas,
        key=lambda lam: r2(
            train_x[cut:], train_y[cut:], solve(train_x[:cut], train_y[:cut], lam)
        ).mean(),
    )
    return r2(test_x, test_y, solve(train_x, train_y, best))


def quadratic(z: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d + d(d+1)/2): z and its pairwise products."""
    rows, cols = np.triu_indices(z.shape[1])
    return np.concatenate([z, z[:, rows] * z[:, cols]], axis=1)


def poke_targets(poke: np.ndarray) -> np.ndarray:
    """Regression targets (n, 5): start x, start y, cos and sin of the angle, length."""
    return np.stack(
        [poke[:, 0], poke[:, 1], np.cos(poke[:, 2]), np.sin(poke[:, 2]), poke[:, 3]], axis=1
    )


def latent_regression(model: een.EENConfig, fits: dict, data: dict, num_train: int) -> dict:
    """R^2 of the poke parameters from z = phi(y - g(x)) vs from the input frame's pixels."""
    encode = jax.jit(jax.vmap(een.encode_error, (None, None, None, 0, 0)), static_argnums=0)
    aimed = data["aimed"]
    features = {"latent": [], "frame": []}
    for sl in (slice(0, num_train), slice(num_train, None)):
        x = een.to_float(jnp.asarray(data["frame"][sl][aimed[sl]]))
        y = een.to_float(jnp.asarray(data["next_frame"][sl][aimed[sl]]))
        features["latent"].append(
            np.asarray(encode(model, fits["g"].params, fits["een"].params["phi"], x, y))
        )
        features["frame"].append(np.asarray(x).reshape(len(x), -1))
    targets = [
        poke_targets(data["poke"][sl][aimed[sl]])
        for sl in (slice(0, num_train), slice(num_train, None))
    ]
    out = {}
    # z enters through a nonlinear decoder, so its regression gets pairwise products too
    features["latent"] = [quadratic(z) for z in features["latent"]]
    for name, (train_x, test_x) in features.items():
        r2 = ridge_r2(train_x, targets[0], test_x, targets[1])
        out[f"r2_{name}"] = float(r2.mean())
        out[f"r2_{name}_direction"] = float(r2[2:4].mean())
        out[f"r2_{name}_per_target"] = r2.tolist()
    return out


class PlanCarry(NamedTuple):
    """Carry of the planner's gradient-descent scan."""

    pokes: jax.Array
    """(restarts, 2) angle [rad] and length [m] of each candidate poke."""
    opt_state: optax.OptState


def aimed_poke(objects: jax.Array, angle: jax.Array, length: jax.Array, params: PokeParams):
    """(4,) poke along ``angle`` [rad] through object 0's centre, as the dataset aims them.

    The finger starts 3 cm short of the object's bounding circle (mid-range of
    ``dataset.sample_poke``) and travels ``length`` [m], so plans stay where the model was trained.
    """
    direction = jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    reach = jnp.hypot(objects[0, 6], objects[0, 7]) + params.finger_radius + 0.03
    h = params.table_half_size
    start = jnp.clip(objects[0, 1:3] - reach * direction, -h, h)
    return jnp.concatenate(
        [start, angle[None], jnp.clip(length, 0.0, params.max_poke_length)[None]]
    )


def plan_poke(
    forward_params,
    objects,
    goal,
    key,
    params: PokeParams,
    restarts: int,
    steps: int,
    learning_rate: float,
) -> jax.Array:
    """GBP on the poke: gradient ascent of ``task.reward`` through the forward model.

    The decision variables are the angle and length of a poke aimed at object 0
    (:func:`aimed_poke`); ``restarts`` random ones are refined in parallel by Adam.

    Args:
        forward_params: :class:`world_models.een.PokeForwardModel` parameters.
        objects: (max_objects, 8) object observation.
        goal: (2,) goal of object 0 [m].
        key: PRNG key for the random restarts.
        params: table constants (action bounds).
        restarts: pokes optimised in parallel; the best predicted one is returned.
        steps: Adam steps.
        learning_rate: Adam step size [rad or m per step].

    Returns:
        (4,) poke [m, m, rad, m] with the best predicted reward, inside the action box.
    """
    angle_key, length_key = jax.random.split(key)
    angles = jax.random.uniform(angle_key, (restarts,), minval=-jnp.pi, maxval=jnp.pi)
    lengths = jax.random.uniform(length_key, (restarts,), maxval=params.max_poke_length)
    variables = jnp.stack([angles, lengths], axis=-1)

    def objective(variable: jax.Array) -> jax.Array:
        poke = aimed_poke(objects, variable[0], variable[1], params)
        return -task.reward(een.predict_position(forward_params, objects, poke), goal)

    optimizer = optax.adam(learning_rate)
    grad = jax.vmap(jax.grad(objective))

    def step(carry: PlanCarry, _) -> tuple[PlanCarry, None]:
        updates, opt_state = optimizer.update(grad(carry.pokes), carry.opt_state)
        return PlanCarry(carry.pokes + updates, opt_state), None

    init = PlanCarry(variables, optimizer.init(variables))
    carry, _ = jax.lax.scan(step, init, None, length=steps)
    best = carry.pokes[jnp.argmin(jax.vmap(objective)(carry.pokes))]
    poke = aimed_poke(objects, best[0], best[1], params)
    return poke.at[2].set(jnp.arctan2(jnp.sin(poke[2]), jnp.cos(poke[2])))


def success_rate(successes: list[bool]) -> dict:
    """Rate and Wilson 95% interval."""
    n, rate = len(successes), float(np.mean(successes))
    z = 1.96
    center = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"rate": rate, "lo": float(center - half), "hi": float(center + half), "n": n}


def goal_reaching(config: Config, log=print) -> dict:
    """Trains the forward model on single-object pokes and scores three poke policies."""
    params = PokeParams(image_size=config.frame_size)
    data_config = dataset.PokeDataConfig(
        num_examples=config.forward_examples,
        shard_size=max(50, config.forward_examples // 4),
        seed=config.seed + 1,
        num_objects=1,
        images=False,
        aimed_fraction=1.0,
        params=params,
    )
    data = load_data(config, data_config, log)
    data = {k: data[k] for k in ("objects", "next_objects", "poke")}
    log("action-conditioned forward model")
    init = een.init_forward(jax.random.PRNGKey(config.seed + 3), params.max_objects)
    fitted = fit(een.forward_loss, init, data, config.forward_trainer, log=None)
    log(f"forward model: best val MSE {fitted.best_val_loss:.4f} dm^2 at epoch {fitted.best_epoch}")
    plan = jax.jit(
        functools.partial(
            plan_poke,
            params=params,
            restarts=config.plan_restarts,
            steps=config.plan_steps,
            learning_rate=config.plan_learning_rate,
        )
    )
    env = PokeEnv(obs_mode="state", task="goal", num_objects=1, params=params)
    results = {}
    for policy in ("planned", "random", "random_aimed"):
        rng, successes = np.random.default_rng(config.seed), []
        env.action_space.seed(config.seed)
        for episode in range(config.goal_episodes):
            obs, info = env.reset(seed=config.seed + 10_000 + episode)
            done = False
            for poke_index in range(config.goal_pokes):
                if policy == "planned":
                    key = jax.random.PRNGKey(config.seed * 1000 + episode * 10 + poke_index)
                    action = np.asarray(plan(fitted.params, obs["objects"], obs["goal"], key))
                elif policy == "random":
                    action = env.action_space.sample()
                else:
                    action = dataset.sample_poke(rng, info["state"], params, 1.0)[0]
                action = np.clip(action, env.action_space.low, env.action_space.high)
                obs, _, done, _, info = env.step(action)
                if done:
                    break
            successes.append(bool(done))
        results[policy] = success_rate(successes)
    results["forward_val_mse_dm2"] = fitted.best_val_loss
    return results


def claim(name: str, held: bool, detail: str, log=print) -> dict:
    """Prints and returns one claim's verdict."""
    log(f"[{'HELD' if held else 'NOT HELD'}] {name}: {detail}")
    return {"claim": name, "held": bool(held), "detail": detail}


def main(config: Config, log=print) -> Path:
    """Runs the experiment and writes ``results/poke/<run>/``; returns that folder."""
    start = time.perf_counter()
    run_dir = io.make_run_dir(config.results_root, config.run_name)
    io.write_json(run_dir / "config.json", resolved(config))
    data_config = dataset.PokeDataConfig(
        num_examples=config.num_train + config.num_test,
        shard_size=max(50, (config.num_train + config.num_test) // 8),
        seed=config.seed,
        params=config.poke_params,
    )
    data = load_data(config, data_config, log)
    train = {k: data[k][: config.num_train] for k in ("frame", "next_frame")}
    test = {k: v[config.num_train :] for k, v in data.items()}
    fits = train_frame_models(config, train, log)
    model, g = config.model, fits["g"].params
    bank = een.latent_bank(model, g, fits["een"].params["phi"], train)
    errors = best_of_k_errors(config, fits, bank, test)
    rows, table = best_of_k_table(errors, config.ks)
    io.write_csv(run_dir / "best_of_k.csv", rows)
    save_samples_figure(run_dir / "samples.png", model, fits, bank, test, config.seed)
    regression = latent_regression(model, fits, data, config.num_train)
    goal = goal_reaching(config, log)
    kmax = max(config.ks)
    metrics = {
        "best_of_k": rows,
        "latent_regression": regression,
        "goal_reaching": goal,
        "histories": {k: v.history for k, v in fits.items()},
        "seconds": time.perf_counter() - start,
    }
    by = {(r["model"], r["k"]): r for r in rows}
    een1, eenk, det = by[("een", 1)], by[("een", kmax)], by[("deterministic", kmax)]
    claims = [
        claim(
            "EEN best-of-k L1 improves with k",
            eenk["l1_hi"] < een1["l1_lo"],
            f"L1 k=1 {een1['l1']:.4f} [{een1['l1_lo']:.4f}, {een1['l1_hi']:.4f}], k={kmax} "
            f"{eenk['l1']:.4f} [{eenk['l1_lo']:.4f}, {eenk['l1_hi']:.4f}]",
            log,
        ),
        claim(
            f"EEN best-of-{kmax} beats the deterministic model in L1",
            eenk["l1_hi"] < det["l1_lo"],
            f"L1 EEN {eenk['l1']:.4f} [{eenk['l1_lo']:.4f}, {eenk['l1_hi']:.4f}] vs "
            f"deterministic {det['l1']:.4f} [{det['l1_lo']:.4f}, {det['l1_hi']:.4f}]",
            log,
        ),
        claim(
            f"EEN best-of-{kmax} beats the deterministic model in PSNR",
            eenk["psnr_lo"] > det["psnr_hi"],
            f"PSNR EEN {eenk['psnr']:.2f} [{eenk['psnr_lo']:.2f}, {eenk['psnr_hi']:.2f}] vs "
            f"deterministic {det['psnr']:.2f} [{det['psnr_lo']:.2f}, {det['psnr_hi']:.2f}] dB",
            log,
        ),
        claim(
            "latent carries the poke (R^2 from z > R^2 from the frame)",
            regression["r2_latent"] > regression["r2_frame"],
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
    metrics["claims"] = claims
    io.write_json(run_dir / "metrics.json", metrics)
    io.atomic_write_text(
        run_dir / "table.md",
        table
        + "\n\n"
        + "\n".join(
            f"- {'held' if c['held'] else 'NOT held'}: {c['claim']} ({c['detail']})" for c in claims
        )
        + "\n",
    )
    log(f"wrote {run_dir} in {metrics['seconds']:.0f} s")
    return run_dir


if __name__ == "__main__":
    main(tyro.cli(Config))
