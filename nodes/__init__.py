"""Nodes: units with declared ports and typed parameters, run by the lockstep, realtime and ROS 2 executors."""
