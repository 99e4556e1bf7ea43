"""Gymnasium environments; importing this package registers `ASG/SynToReal-v0`."""

import gymnasium as gym

from envs.syn_to_real import OBS_FIELDS, SynToRealEnv

ENV_ID = "ASG/SynToReal-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.syn_to_real:SynToRealEnv")

__all__ = ["ENV_ID", "OBS_FIELDS", "SynToRealEnv"]
