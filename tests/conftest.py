"""Suite-wide settings."""

import os

from hypothesis import settings

# In CI the property tests are derandomized: a run on a clean checkout must pass or fail the
# same way twice. Locally every run draws new examples, which is how new bugs are found.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
