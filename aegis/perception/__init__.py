"""Perception and state estimation math for the nodes that turn the robot's own sensors into obstacles and state (numpy, no messages).

Obstacles (issue 13, items 1-2):

* :mod:`aegis.perception.lidar`: a planar LaserScan -> world-frame circles and line segments, each
  with a 1-sigma uncertainty (the ``lidar_obstacles`` node's core); its straight faces, their lines
  and where they end (a corner, the next beam that missed them): :mod:`aegis.perception.lidar_faces`.
* :mod:`aegis.perception.depth`: a depth image -> a world voxel map with memory -> cylinders and
  boxes, each with an uncertainty (the ``depth_obstacles`` node's core).

State estimation (issue 13, item 4):

* :mod:`aegis.perception.ekf`: what every filter here shares: a replay buffer that applies a
  delayed measurement at its stamp and re-applies what came after it, a chi-square gate, NEES.
* :mod:`aegis.perception.quadrotor_eskf`: an error-state EKF for a quadrotor: IMU propagation
  (accelerometer + gyro with random-walk biases), motion-capture pose updates.
* :mod:`aegis.perception.diff_drive_ekf`: an EKF for a differential-drive robot: wheel odometry
  (forward speed, turn rate) and the IMU's yaw rate (with its bias), pose fixes.
"""
