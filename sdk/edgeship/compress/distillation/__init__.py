"""Knowledge distillation: a student trained on its teacher's outputs."""
