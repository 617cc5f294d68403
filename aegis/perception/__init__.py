"""Perception and state estimation math: plain numpy, no messages (the nodes in aegis.nodes wrap it).

State estimation (issue 13, item 4):

* :mod:`aegis.perception.ekf`: what every filter here shares: a replay buffer that applies a
  delayed measurement at its stamp and re-applies what came after it, a chi-square gate, NEES.
* :mod:`aegis.perception.quadrotor_eskf`: an error-state EKF for a quadrotor: IMU propagation
  (accelerometer + gyro with random-walk biases), motion-capture pose updates.
* :mod:`aegis.perception.diff_drive_ekf`: an EKF for a differential-drive robot: wheel odometry
  (forward speed, turn rate) and the IMU's yaw rate (with its bias), pose fixes.
"""
