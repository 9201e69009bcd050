"""The serving layer: the one door every model call goes through."""

from adk.serving.layer import ServingLayer

__all__ = ["ServingLayer"]
