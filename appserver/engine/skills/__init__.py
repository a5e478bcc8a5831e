"""Skills: ``SKILL.md`` files found on disk, offered to the model and injected on mention.

``loader`` parses one file, ``roots`` says where to look for a cwd, ``catalog`` scans and
caches, ``prompt`` renders what the model sees.
"""
