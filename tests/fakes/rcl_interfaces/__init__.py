"""Fake rcl_interfaces for tests (see tests/fakes/README.md): only what the aegis ROS adapter touches."""
