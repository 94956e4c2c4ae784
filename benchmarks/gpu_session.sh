#!/usr/bin/env bash
# Every GPU measurement the issues ask for, in one go (about 10 minutes on one H100):
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]      # default OUT_DIR: results/gpu_session
#
# Runs, each under its own time limit: the env rollout (benchmarks.envs, up to 1M envs), A2C
# throughput (benchmarks.agents, up to 262K envs), planner time per action (benchmarks.planners,
# PETS-scale CEM included; GBP's rows once more with CUDA graphs for loops), PhysNet and EEN training/sampling throughput (benchmarks.towers,
# benchmarks.poke; the CPU-only generation rows are skipped), then the paper-budget spaceship table
# (python -m experiments.spaceship --full) with whatever time is left of SESSION_SECONDS.
# Writes OUT_DIR/gpu_log.txt (everything) and the spaceship table, metrics, config and curve, and
# prints a summary of the target lines last. Run from the repository root with the package importable.
# Check it on a CPU first: python -m pytest -m "slow or not slow" tests/test_benchmarks.py
set -u
out=${1:-${OUT:-results/gpu_session}}
session_seconds=${SESSION_SECONDS:-570}
mkdir -p "$out"
log="$out/gpu_log.txt"
export PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

step() {  # step LIMIT_SECONDS COMMAND...: runs COMMAND under a time limit, logs it, never aborts
    local limit=$1 start=$SECONDS
    shift
    echo "=== $* (limit ${limit} s)" | tee -a "$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    echo "=== exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$log"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, \
'optax', optax.__version__, jax.devices())"; } 2>&1 | tee -a "$log"

step 50 python3 -m benchmarks.envs --vector-sizes 1 65536 --rollout-sizes 16384 1048576
step 75 python3 -m benchmarks.agents --device-env-counts 16 4096 65536 262144 \
    --host-env-counts 1 --steps 20000000
step 75 python3 -m benchmarks.planners
# One state's GBP plan is latency-bound (~10^3 small dependent kernels): its rows again with XLA
# capturing loops and conditionals in CUDA graphs too (a flag value this XLA rejects fails this step only)
graphs=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL
step 30 env XLA_FLAGS="${XLA_FLAGS:-} $graphs" python3 -m benchmarks.planners --gbp-only --gbp-batch 0
step 35 python3 -m benchmarks.poke --no-simulate --batch-size 256 --steps 20 --samples 20000
step 35 python3 -m benchmarks.towers --no-generation --train-examples 2048 --batch-size 64

left=$((session_seconds - SECONDS))
[ "$left" -ge 30 ] && step "$left" python3 -m experiments.spaceship --full --results-root /tmp/worldplan_gpu \
    --run-name full
for f in table.md metrics.json config.json curve.png; do
    cp "/tmp/worldplan_gpu/full/$f" "$out/spaceship_$f" 2>/dev/null || true
done

echo
echo "##### summary (full log: $log)"
grep -E "^(===|machine|device|GPU target|target|best device|PETS|\| |\[|jax )|held" "$log" \
    | grep -v "^\[ *[0-9]* s\]" | cut -c1-160
