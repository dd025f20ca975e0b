"""Video applications: who appears when, faces hidden, expression over time.

The media plumbing they share (reading, writing, tracking, per-track identity)
is :mod:`facelens.video`, a lower floor; this package puts it to work:

* :mod:`facelens.apps.video.identify`: :func:`identify_video`, one identity
  decision per face track, and the annotated copy.
* :mod:`facelens.apps.video.anonymize`: :func:`anonymize_video`, faces hidden
  in every frame, with the recall check.
* :mod:`facelens.apps.video.expressions`: :func:`analyze_video_expressions`,
  expression over time per track.

Nothing is imported here: each module loads its own models when used.
"""
