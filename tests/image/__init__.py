"""`make image-test`: the container image built on a local base, run and checked (see __main__)."""
