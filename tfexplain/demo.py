"""Demo: train a small Keras classifier on scikit-learn's breast-cancer data, explain a few test rows
with KernelShap and Lime, print the top features.  Run: ``python -m tfexplain.demo``."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def demo_split(seed: int = 0):
    """(X_train, X_test, y_train, y_test, feature_names): load_breast_cancer (float32 features, int64
    labels, 1 = benign) split 75/25 as :func:`demo_model` trains on it."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, x_test, y_train, y_test, [str(n) for n in data.feature_names]


def demo_model(seed: int = 0, epochs: int = 30):
    """(model, X_train, X_test, feature_names): a 30-32-16-2 softmax MLP with a Normalization layer,
    trained on load_breast_cancer (float32). Deterministic for a given seed. The labels:
    :func:`demo_split`."""
    import keras

    x_train, x_test, y_train, _, names = demo_split(seed)
    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization()
    norm.adapt(x_train)
    model = keras.Sequential([
        keras.Input((x_train.shape[1],)), norm,
        keras.layers.Dense(32, activation="relu"), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return model, x_train, x_test, names


def main():
    import tfexplain

    model, x_train, x_test, names = demo_model()
    rows = x_test[:3]
    background = x_train[np.random.default_rng(0).choice(len(x_train), 50, replace=False)]
    shap_explainer = tfexplain.KernelShap(model, background, target=1, feature_names=names,
                                          output_names=["malignant", "benign"])
    exp = shap_explainer(rows, seed=0)
    print(f"KernelShap: {exp.values.shape[1]} features, {int(exp.n_evals[0])} model rows per instance, "
          f"{exp.seconds:.2f} s for {len(rows)} rows (first call includes tracing)")
    print(exp.table(k=5))
    print()
    lime = tfexplain.Lime(model, x_train, feature_names=names, output_names=["malignant", "benign"])
    lexp = lime(rows, seed=0)
    print(f"Lime: {int(lexp.n_evals[0])} model rows per instance, {lexp.seconds:.2f} s for {len(rows)} rows; "
          "weights are per standard deviation of each feature")
    print(lexp.table(k=5))


if __name__ == "__main__":
    main()
