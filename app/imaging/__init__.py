"""Images into what LeNet-5 was trained on. Pure numpy, Pillow and OpenCV: TensorFlow stays in app.model.

decode: format allow-list, pixel guard, luminance and alpha. ink: clean drawings and scans. photo: phone
photos of paper (lighting, adaptive ink, ruled lines, choosing the digit). mnist: MNIST's 28x28 framing.
margins: paper put back round a crop, a box's lines painted over. digit: the one entry point for one digit,
`preprocess_image`, and `NoDigit`. number_ink: a number's ink. segment: a number into
candidate digits (`segment_number`). reading: the reading chosen from the model's probabilities
(`read_number`)."""

from app.imaging.digit import NO_DIGIT_REASONS, NoDigit, preprocess_image
from app.imaging.mnist import to_png

__all__ = ["NO_DIGIT_REASONS", "NoDigit", "preprocess_image", "to_png"]
