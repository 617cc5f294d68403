"""Perception math for the nodes that turn the robot's own sensors into obstacles and state (pure numpy, no messages).

:mod:`aegis.perception.lidar`: a planar LaserScan -> world-frame circles and line segments, each with
a 1-sigma uncertainty (the ``lidar_obstacles`` node's core).
:mod:`aegis.perception.depth`: a depth image -> a world voxel map with memory -> clustered boxes,
each with an uncertainty (the ``depth_obstacles`` node's core).
"""
