"""The SDK's runtime: everything a use case's code never imports.

Nothing here is API. Data scientists use `diamond_sdk` (Context and the errors) and
`diamond_sdk.testing`; the platform runs `launch_job.py` (runner), `python -m
diamond_sdk._runtime.validate` (the deploy check) and `python -m diamond_sdk.testing`
(the dry run). Names may change here without notice.
"""
