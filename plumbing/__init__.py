"""The ground floor: plumbing every finharness package shares, importing none of them.

- ``recipes``: YAML recipe loading into strict pydantic schemas, errors naming file and field.
- ``atomic``: atomic file writes that follow the umask.
- ``checkpoints``: embedded models, checkpoint resolution (local, embedded, Hub) and its
  safety checks (safetensors only, no pickles, matching architecture).
- ``offline``: the Hugging Face Hub switch.
"""
