"""Block towers: 2D pymunk stacking (overhang task), its dataset for PhysNet, and images."""
