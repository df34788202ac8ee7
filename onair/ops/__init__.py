"""Operations: `/metrics` for Prometheus, `/healthz` and `/readyz` for orchestrators."""
