# The index of what a person runs. Every target installs what it needs on a fresh
# Debian/Ubuntu machine and is safe to run twice.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## run the whole pipeline locally (local S3/SQS, worker, sample uploads) and write demo-out/index.html
	scripts/demo/demo.sh

test: ## every test: lint, unit, integration against local AWS, template checks, hermetic arm64 run
	scripts/check/test.sh

check: ## the inner loop, no emulators (about 3.5 min after a change to src/): rustfmt, clippy, unit and golden render tests, the protocol model
	cargo fmt --all -- --check
	cargo clippy --release --all-targets --locked -- -D warnings
	cargo test --release --locked --lib --test render --test protocol
	cargo test --release --locked --test render -- --ignored

dist: ## build dist/function.zip (arm64 bootstrap) and dist/layer.zip (libvips closure) from Debian packages
	scripts/build/dist.sh

bench: ## side-by-side benchmark against sharp and vipsthumbnail, thumbs on libvips 8.14/8.16/8.18; writes docs/benchmarks/
	scripts/bench/bench.sh

bench-memory: ## worst-case peak memory of one render per input format at the limits; writes docs/benchmarks/memory.json
	scripts/bench/bench-memory.sh

fuzz: ## fuzz thumbs render with mutated fixtures of every input format: panics, hangs, memory over budget
	scripts/bench/fuzz.sh $(ARGS)

deploy: ## deploy the CloudFormation stack to your AWS account (see README)
	scripts/deploy/deploy.sh $(ARGS)

destroy: ## empty the stack's buckets and delete it (asks first)
	scripts/deploy/destroy.sh $(ARGS)

.PHONY: help demo test check dist bench bench-memory fuzz deploy destroy
