"""Prefloop's tuning engine: plain Python over torch / transformers / TRL / PEFT, no Django.

Everything arrives as arguments (paths, plain dicts, a progress callback) and leaves as plain data;
see ``docs/engine.md``. Importing this package is cheap: torch and friends are imported
inside the functions (or in modules only those functions import).

Public entry points (module: function):

* ``loading``: ``load_base(source, ...)``, ``load_policy(source, adapter, ...)``,
  ``resolve_device_dtype(device, dtype)`` (``device="auto"``: one model over all cards),
  ``input_device(model)``, ``base_fingerprint(source)`` — a source is a local
  Hugging Face folder, a ``.gguf`` file, or the packaged ``"smollm2-135m-instruct"``; GGUF
  weights are dequantised once and cached as safetensors under ``cache_dir``.
* ``adapters``: ``LoraSpec`` (r, alpha, dropout, target_modules, layers), ``new_adapter(...)``,
  ``read_metadata(adapter_dir)`` — adapter folders carry ``prefloop.json`` metadata.
* ``generation``: ``generate(source=, adapter=, prompts=, n=, temperature=, top_p=,
  max_new_tokens=, seed=, ...)`` — batched sampling with the chat template and KV cache.
* ``dpo``: ``DPOConfig``, ``train_dpo(source=, adapter=, rows=, output_dir=, config=, ...)`` —
  DPO (sigmoid, ipo, hinge, robust, sigmoid_norm, ...) on a fresh or an existing adapter, with
  checkpoints, resume, cancel and an atomically written output folder.
* ``reward``: ``implicit_rewards(...)``, ``RewardConfig``, ``train_reward_model(...)``,
  ``score(source=, reward=, items=)``.
* ``rejection``: ``RejectionConfig``, ``rejection_sample(...)`` — best-of-N, then SFT
  (distillation into a new adapter) or best-vs-worst pairs.
* ``evaluation``: ``preference_accuracy(...)`` (with its interval, split by which answer is
  longer), ``before_after(...)``, ``drift_kl(...)``, and ``evaluate_outputs(...)``: all of an
  evaluate job's answers and figures with the base model loaded once.
* ``distributed``: ``join(device)``, ``step_share(...)``, ``launch(args, processes)`` — DPO on
  several processes (``accelerate launch`` / ``torchrun`` / ``dpo --processes N``).
* ``errors``: ``EngineError`` and its ``BadInput``, ``TrainingDiverged``, ``Cancelled``.

Command line: ``python -m tuning.engine {generate,dpo,reward-model,rejection-sample,evaluate}``.
"""
