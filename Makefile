.PHONY: bench
bench:
	bash bench/run.sh
