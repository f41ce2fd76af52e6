"""The seed tutorial's base CNN, shared by the Keras peers: conv32 → pool → conv64 → pool →
dense128 → dense64 (the feature layer), all ReLU."""
import keras
from keras import layers


def seed_base(size, channels):
    inputs = keras.Input(shape=(size, size, channels))
    x = layers.Conv2D(32, (3, 3), activation="relu")(inputs)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Conv2D(64, (3, 3), activation="relu")(x)
    x = layers.MaxPooling2D((2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(64, activation="relu")(x))
