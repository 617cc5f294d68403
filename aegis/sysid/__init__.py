"""System identification: fit a robot's physical parameters to a recorded bag and write them as a hw_config overlay (`aegis sysid`)."""
