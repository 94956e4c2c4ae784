"""Highway driving among random traffic (``worldplan/Driving-v0``): a JAX core, Gymnasium shells."""
