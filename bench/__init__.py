"""keybin's benchmarks: each case against its floors (and a peer), measured in one run."""
