# PoseStudio: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11, Debian).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench system-deps clean

$(STAMP): pyproject.toml
	bash .ci/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	# torch==2.13.0 is the CPU wheel on disk; pinned in pyproject so nothing pulls a CUDA build.
	$(BIN)/pip install --quiet -e ".[test]"
	# BlazePose: mediapipe 0.10.14 bundles the full pose model and runs beside numpy 2 / OpenCV 5. Its
	# declared jax + jaxlib (about 380 MB) are never imported by the pose solution, so they are skipped;
	# `pip install 'posestudio[blazepose]'` is the plain route for users who do not mind them.
	$(BIN)/pip install --quiet --no-deps mediapipe==0.10.14
	$(BIN)/pip install --quiet absl-py attrs flatbuffers "protobuf>=4.25.3,<5" sounddevice
	touch $(STAMP)

system-deps:
	bash .ci/system-deps.sh

## demo: render a synthetic 4-camera rig, calibrate it, reconstruct a walk and rendered videos, errors vs truth
demo: $(STAMP)
	$(BIN)/posestudio demo

## test: the package layers (import-linter), then the whole suite (slow tests included)
test: $(STAMP)
	$(BIN)/python .ci/lint_imports.py
	$(BIN)/pytest

## lint: the package layers only (contracts in pyproject.toml)
lint: $(STAMP)
	$(BIN)/python .ci/lint_imports.py

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

## bench: peers (aniposelib, Pose2Sim) into the same environment, then every benchmark
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]" "numpy>=2,<3" "opencv-contrib-python>=5,<6"
	# Pose2Sim without its heavy unpinned requirements: triangulation and filtering need only these
	$(BIN)/pip install --quiet --no-deps pose2sim==0.10.49
	$(BIN)/pip install --quiet rtoml anytree c3d statsmodels filterpy "numpy>=2,<3"
	$(BIN)/python -m benchmarks.calibration
	$(BIN)/python -m benchmarks.reconstruction --grid --realistic --measured
	$(BIN)/python -m benchmarks.reconstruction_ablation
	$(BIN)/python -m benchmarks.reconstruction_scale --blas-threads 1
	$(BIN)/python -m benchmarks.detection
	$(BIN)/python -m benchmarks.detection --tce
	$(BIN)/python -m benchmarks.lifting
	# Blender checks our BVH with its own importer (and converts to FBX); Debian's package, headless
	command -v blender >/dev/null || { SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends blender; }
	$(BIN)/python -m benchmarks.live --loop
	# the export benchmark also solves the real 4-camera clip as reconstructed from BlazePose
	D=../shared/data/pose2sim_demo_single; if [ -d $$D ]; then \
		$(BIN)/posestudio reconstruct --calibration $$D/calibration/Calib.qca.txt \
			--videos $$D/videos/cam01.mp4 $$D/videos/cam02.mp4 $$D/videos/cam03.mp4 $$D/videos/cam04.mp4 \
			--out out/bench_real_take && $(BIN)/python -m benchmarks.export --take out/bench_real_take; \
	else $(BIN)/python -m benchmarks.export; fi

clean:
	rm -rf $(VENV) build *.egg-info
