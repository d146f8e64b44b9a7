# OneFlow developer tasks. `make run` and `make test` are the README's two commands.
.PHONY: run test lint fmt bench check api-fuzz deploy-check observability-check audit

run:
	cargo run -p oneflow

test:
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

check:
	for p in oneflow-gateway oneflow-auth oneflow-billing oneflow-router oneflow-mock-provider oneflow; do \
		cargo check -p $$p || exit 1; \
	done

api-fuzz:
	bash scripts/schemathesis.sh

bench:
	bash bench/run.sh

deploy-check:
	bash scripts/ci-deploy.sh

observability-check:
	bash scripts/ci-observability.sh

audit:
	cargo audit --db ../shared/advisory-db --no-fetch --deny warnings
