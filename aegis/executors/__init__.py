"""Executors: they run nodes, deliver their inputs and carry their outputs (lockstep in simulated time, realtime on the wall clock; the ROS 2 shell alongside)."""
