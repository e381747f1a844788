"""The sync queue: jobs, leased units, the audience snapshot hand-off and progress."""
