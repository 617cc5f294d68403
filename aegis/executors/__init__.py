"""Executors: they run nodes, deliver their inputs and carry their outputs (lockstep now; realtime and ROS 2 alongside)."""
