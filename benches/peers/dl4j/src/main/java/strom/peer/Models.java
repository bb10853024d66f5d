package strom.peer;

import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.EmbeddingSequenceLayer;
import org.deeplearning4j.nn.conf.layers.LSTM;
import org.deeplearning4j.nn.conf.layers.LocalResponseNormalization;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.conf.layers.SubsamplingLayer;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.lossfunctions.LossFunctions.LossFunction;

/** The network configurations shared by {@link Bench} and {@link Fixtures}. */
final class Models {
  private Models() {}

  private static NeuralNetConfiguration.Builder base(IUpdater updater, long seed, double l2) {
    NeuralNetConfiguration.Builder b = new NeuralNetConfiguration.Builder()
        .seed(seed)
        .dataType(DataType.FLOAT)
        .updater(updater)
        .weightInit(WeightInit.RELU)
        .trainingWorkspaceMode(WorkspaceMode.ENABLED)
        .inferenceWorkspaceMode(WorkspaceMode.ENABLED);
    if (l2 > 0) {
      b.l2(l2);
    }
    return b;
  }

  /** 784-256-128-10, ReLU hidden, softmax + MCXENT output, He init. Fed [n,784]. */
  static MultiLayerConfiguration mlp(IUpdater updater, long seed, double l2) {
    return base(updater, seed, l2).list()
        .layer(new DenseLayer.Builder().nIn(784).nOut(256).activation(Activation.RELU).build())
        .layer(new DenseLayer.Builder().nIn(256).nOut(128).activation(Activation.RELU).build())
        .layer(new OutputLayer.Builder(LossFunction.MCXENT).nIn(128).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .build();
  }

  /**
   * Strom's `cnn` preset: conv3x3x32 same relu, maxpool 2/2, conv3x3x64 same relu, maxpool 2/2,
   * dense 128 relu, softmax 10. 421,642 parameters. Fed [n,1,28,28] (NCHW).
   */
  static MultiLayerConfiguration cnn(IUpdater updater, long seed, double l2) {
    return base(updater, seed, l2).list()
        .layer(new ConvolutionLayer.Builder(3, 3).nIn(1).nOut(32).stride(1, 1)
            .convolutionMode(ConvolutionMode.Same).activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new ConvolutionLayer.Builder(3, 3).nOut(64).stride(1, 1)
            .convolutionMode(ConvolutionMode.Same).activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new DenseLayer.Builder().nOut(128).activation(Activation.RELU).build())
        .layer(new OutputLayer.Builder(LossFunction.MCXENT).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .setInputType(InputType.convolutional(28, 28, 1))
        .build();
  }

  /**
   * LeNet-like, with layer types Strom lacks (LocalResponseNormalization) next to ones it has
   * (BatchNormalization, dropout on a dense layer, average pooling).
   */
  static MultiLayerConfiguration lenet(IUpdater updater, long seed) {
    return base(updater, seed, 5e-4).list()
        .layer(new ConvolutionLayer.Builder(5, 5).nIn(1).nOut(20).stride(1, 1)
            .activation(Activation.IDENTITY).build())
        .layer(new LocalResponseNormalization.Builder().k(2).n(5).alpha(1e-4).beta(0.75).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new ConvolutionLayer.Builder(5, 5).nOut(50).stride(1, 1)
            .activation(Activation.IDENTITY).build())
        // DL4J's global default activation is sigmoid, and BatchNormalization applies its
        // activation: name it (here relu after the normalization).
        .layer(new BatchNormalization.Builder().activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.AVG)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new DenseLayer.Builder().nOut(500).activation(Activation.RELU).dropOut(0.5).build())
        .layer(new OutputLayer.Builder(LossFunction.NEGATIVELOGLIKELIHOOD).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .setInputType(InputType.convolutionalFlat(28, 28, 1))
        .build();
  }

  /** A sequence model made only of layer types Strom lacks: embedding, LSTM, RNN output. */
  static MultiLayerConfiguration lstm(IUpdater updater, long seed) {
    return base(updater, seed, 0).list()
        // No setInputType: it would overwrite the embedding's nIn (vocabulary size) with 1.
        .layer(new EmbeddingSequenceLayer.Builder().nIn(1000).nOut(64).inputLength(20).build())
        .layer(new LSTM.Builder().nIn(64).nOut(128).activation(Activation.TANH).build())
        .layer(new RnnOutputLayer.Builder(LossFunction.MCXENT).nIn(128).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .build();
  }
}
