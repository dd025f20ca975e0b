"""Video applications: who appears when, faces hidden, expression over time.

The media plumbing they share (reading, writing, tracking, per-track identity)
is :mod:`facelens.video`, a lower floor; this package puts it to work, one
small module each:

* :mod:`facelens.apps.video.identify`: :func:`identify_video`, one identity
  decision per face track;
* :mod:`facelens.apps.video.results`: what it finds, :class:`VideoIdentification`
  (JSON, CSV) made of :class:`TrackTimeline` entries;
* :mod:`facelens.apps.video.annotate`: the annotated copy (file or live source);
* :mod:`facelens.apps.video.charts`: the timeline charts (PNG);
* :mod:`facelens.apps.video.anonymize`: :func:`anonymize_video`, faces hidden
  in every frame, with the recall check;
* :mod:`facelens.apps.video.expressions`: :func:`analyze_video_expressions`,
  expression over time per track.

Boxes and labels are drawn by :mod:`facelens.apps.draw`, as for photos.
Nothing is imported here: each module loads its own models when used.
"""

__all__: list[str] = []
