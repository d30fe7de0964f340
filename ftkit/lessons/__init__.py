"""ftkit's lessons: one module per technique a notebook teaches, built on the engine — partial fine-tuning
(``freezing``, ``baselines``), adapters, LoRA counts (``lora``), soft prompts (``soft_prompt``), PEFT methods by
name (``methods``), data cleaning and augmentation (``quality``, ``augment``), gradient accumulation and batch
costs (``batching``), early stopping, instruction tuning (``sft``), a standalone model (``export``), scaling out
(``launch``), calibration, counterfactual augmentation (``counterfactual``) and EWC (``ewc``). A lesson may
import another lesson, the engine and the platform; nothing below imports a lesson."""
