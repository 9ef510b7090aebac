"""mirrorcam: one representation for doing and seeing an action.

A camera pipeline turns frames into MediaPipe pose landmarks, landmarks into a
view-invariant embedding, and embeddings into activations of action templates
("mirror neurons") that fire the same way for a performer seen on camera and for
a performer watched in a clip.
"""

__version__ = "0.1.0"
