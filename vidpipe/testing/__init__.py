"""Test doubles shipped with the package, for vidpipe's tests, benchmarks and plugin
authors: a local HTTP emulator of the Vertex AI REST API (`vertex_emulator`) and a
recording fake provider (`fakes`)."""
