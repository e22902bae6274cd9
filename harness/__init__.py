"""What the test suites and the benchmark share: a fake OpenAI backend that misbehaves on
request, and a runner for the real proxy (gunicorn) as a subprocess. Not part of the service."""
